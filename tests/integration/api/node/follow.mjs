// A Node client of the HTTP API with nothing but the built-in fetch: enqueue one job, read its
// status, then follow /v1/events until the job's terminal event. Prints one JSON line.
// Usage: node follow.mjs BASE_URL API_KEY JOB_JSON_FILE
import { readFileSync } from "node:fs";

const [base, key, file] = process.argv.slice(2);
const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };

const posted = await fetch(`${base}/v1/jobs`, {
  method: "POST",
  headers,
  body: readFileSync(file, "utf8"),
});
const receipt = await posted.json();
if (posted.status !== 201) throw new Error(`enqueue: ${posted.status} ${JSON.stringify(receipt)}`);

const status = await (await fetch(`${base}/v1/jobs/${encodeURIComponent(receipt.job_id)}`, { headers })).json();

let after = "0";
let terminal = null;
const deadline = Date.now() + 60_000;
while (!terminal && Date.now() < deadline) {
  const page = await (await fetch(`${base}/v1/events?after=${after}&wait=5`, { headers })).json();
  for (const event of page.events) {
    if (event.job_id === receipt.job_id && event.terminal) terminal = event;
  }
  after = page.next;
}
console.log(JSON.stringify({ receipt, status, terminal }));
