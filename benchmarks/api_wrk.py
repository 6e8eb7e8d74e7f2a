"""The closed-loop ``POST /v1/jobs`` measure with ``wrk`` (a C load generator), when it is
installed: it costs the shared CPUs a fraction of what the Python generator does, leaving more
to the API. Each request carries a job of its own (a Lua script numbers them), so each is a new
job. Its latencies are wrk's own, from each request's sending; the open-loop latency measure
stays with :mod:`benchmarks.api_load`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_MARK = "WRK-RESULT "

# The body is split around its id; each thread numbers its own requests.
_SCRIPT = """
local parts = %(parts)s
local headers = %(headers)s
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
function request()
  n = n + 1
  local id = string.format("%%s-%%d-%%07d", %(tag)s, tid, n)
  return wrk.format("POST", %(path)s, headers, table.concat(parts, id))
end
function done(summary, latency, requests)
  local p = {}
  for _, q in ipairs({50, 95, 99}) do p["p" .. q] = latency:percentile(q) / 1000 end
  io.write(string.format(
    "%(mark)s{\\"requests\\": %%d, \\"duration_us\\": %%d, \\"non_2xx\\": %%d, " ..
    "\\"socket_errors\\": %%d, \\"p50\\": %%.3f, \\"p95\\": %%.3f, \\"p99\\": %%.3f}\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    p.p50, p.p95, p.p99))
end
"""


def available() -> bool:
    """True when ``wrk`` is on the PATH."""
    return shutil.which("wrk") is not None


def _lua(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string literal is a Lua string literal here
    if isinstance(value, list):
        return "{" + ", ".join(_lua(v) for v in value) + "}"
    return "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in value.items()) + "}"


def run(
    url: str,
    path: str,
    headers: dict[str, str],
    body: dict[str, Any],
    *,
    id_field: str,
    tag: str,
    connections: int,
    seconds: float,
) -> dict[str, Any]:
    """``POST path`` with ``body`` for ``seconds`` over ``connections`` keep-alive connections
    from one wrk thread, each request's ``id_field`` values (every string equal to the body's
    ``id_field``) made unique; requests per second, answers and latency percentiles (ms)."""
    placeholder = "\x00ID\x00"
    text = json.dumps(body).replace(json.dumps(body[id_field])[1:-1], placeholder)
    script = _SCRIPT % {
        "parts": _lua(text.split(placeholder)),
        "headers": _lua(headers),
        "tag": json.dumps(tag),
        "path": json.dumps(path),
        "mark": _MARK,
    }
    with tempfile.TemporaryDirectory() as tmp:
        lua = Path(tmp) / "post.lua"
        lua.write_text(script)
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                str(lua),
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith(_MARK))
    found = json.loads(line[len(_MARK) :])
    elapsed = found["duration_us"] / 1e6
    ok = found["requests"] - found["non_2xx"]
    statuses = {"2xx": ok} if not found["non_2xx"] else {"2xx": ok, "other": found["non_2xx"]}
    if found["socket_errors"]:
        statuses["socket errors"] = found["socket_errors"]
    return {
        "elapsed_s": elapsed,
        "requests": found["requests"],
        "statuses": statuses,
        "latency_ms": {k: found[k] for k in ("p50", "p95", "p99")},
        "generator": "wrk",
    }
