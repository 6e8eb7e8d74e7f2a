"""The job ledger: what each job's delivery has come to, kept in Redis beside the queue.

Before a request goes out the attempt is marked ``in_flight``; the outcome is written together
with its result event and the job's timeline entry in one atomic step (a Lua script), which
also guarantees exactly one terminal event per run: the terminal event is written only if no
terminal event exists yet. A job that finds its own attempt still ``in_flight`` when it starts
was interrupted mid-request (worker killed, time limit, redelivery): the pipeline then knows the
vendor may have it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

import redis

from order_dispatch.contract import EventStatus, Job, ResultEvent
from order_dispatch.keys import Keys
from order_dispatch.timeline import MAX_ENTRIES, TimelineEntry

# KEYS: terminal marker, results stream, ledger hash, dead letters hash, job hash, timeline,
#       dead-letter events hash, job document
# ARGV: event id, event json, stream maxlen, is terminal (1/0), ledger state, ttl s, job id,
#       status, the job's ids for the dead-letter hash ('' for none), timeline entry json,
#       timeline cap, the event's run, how long the document outlives its run's end (seconds;
#       0: kept, the job stays open), the stream's oldest age kept (seconds)
# An event of a run that a replay superseded, or a second terminal event of a run, is not
# written; its timeline entry is, marked "recorded": false (the attempt happened all the same).
_RECORD_LUA = """
local function timeline(entry)
  redis.call('RPUSH', KEYS[6], entry)
  redis.call('LTRIM', KEYS[6], -tonumber(ARGV[11]), -1)
  redis.call('EXPIRE', KEYS[6], tonumber(ARGV[6]))
end
local function unrecorded()
  timeline((string.gsub(ARGV[10], '"recorded":true', '"recorded":false', 1)))
end
local current = redis.call('HGET', KEYS[5], 'run')
if current and tonumber(current) > tonumber(ARGV[12]) then
  unrecorded()
  return {0, 'superseded by run ' .. current}
end
if ARGV[4] == '1' then
  local ok = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', tonumber(ARGV[6]))
  if not ok then
    unrecorded()
    return {0, redis.call('GET', KEYS[1])}
  end
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
  'event_id', ARGV[1], 'job_id', ARGV[7], 'status', ARGV[8], 'event', ARGV[2])
local now = redis.call('TIME')
redis.call('XTRIM', KEYS[2], 'MINID', '~', (tonumber(now[1]) - tonumber(ARGV[14])) * 1000)
if ARGV[4] == '1' and tonumber(ARGV[13]) > 0 then
  local left = redis.call('TTL', KEYS[8])
  if left == -1 or left > tonumber(ARGV[13]) then
    redis.call('EXPIRE', KEYS[8], tonumber(ARGV[13]))
  end
end
redis.call('HSET', KEYS[3], 'state', ARGV[5], 'last_event', ARGV[1], 'last_status', ARGV[8])
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[6]))
if ARGV[9] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[7], ARGV[9])
  redis.call('HSET', KEYS[7], ARGV[7], ARGV[2])
end
timeline(ARGV[10])
return {1, id}
"""


# Start an attempt unless another one holds the job: KEYS: ledger. ARGV: attempt, worker,
# ttl s, the started_at of a stale attempt being taken over ('' for none). Times are Redis's.
_BEGIN_LUA = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'in_flight' and redis.call('HGET', KEYS[1], 'started_at') ~= ARGV[4] then
  return 0
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'state', 'in_flight', 'attempt', ARGV[1], 'worker', ARGV[2],
  'started_at', t[1] .. '.' .. string.format('%06d', tonumber(t[2])))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


class LedgerState(StrEnum):
    """Where a job's delivery stands, as the ledger hash's ``state`` field says."""

    IN_FLIGHT = "in_flight"
    """An attempt began and its request may be out."""
    WAITING = "waiting"
    """An attempt ended without a terminal outcome; the next one is scheduled."""
    DEFERRED = "deferred"
    """The job waits without spending an attempt (throttled, circuit open, not_before)."""
    DONE = "done"
    """The run ended with its terminal event."""


#: Terminal statuses whose job waits in the dead letters for replay or a decision.
_KEPT_FOR_REPLAY = frozenset({EventStatus.DEAD_LETTERED, EventStatus.IN_DOUBT})
#: Fields of a job that hold the order and its customer's data: never in the dead letters.
_PERSONAL_FIELDS = frozenset({"order", "address"})


def _state_after(event: ResultEvent) -> LedgerState:
    if event.terminal:
        return LedgerState.DONE
    if event.status is EventStatus.DEFERRED:
        return LedgerState.DEFERRED
    return LedgerState.WAITING


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A job's ledger as read at the start of an attempt.

    ``terminal_event_id`` is set when the run already ended. ``started_at`` is the Redis clock
    (epoch seconds, as stored) when the last attempt began;
    ``age_s`` is how long ago that was, by the same clock.
    """

    state: LedgerState | None
    attempt: int
    started_at: str | None
    age_s: float
    terminal_event_id: str | None
    job_doc: str | None = None
    """The stored job (JSON), or None when the job store no longer has it."""
    current_run: int = 1
    """The job's current run (a replay starts the next one)."""
    run_id: str = ""
    """The current run's unique token (event ids carry it, so no two runs share one)."""


class JobLedger:
    """Reads and writes the ledger and the result stream for the pipeline."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        results_maxlen: int,
        ttl_s: int,
        retention_s: int = 7 * 86400,
        results_max_age_s: int = 7 * 86400,
    ) -> None:
        self.client = client
        self.keys = keys
        self.results_maxlen = results_maxlen
        self.ttl_s = ttl_s
        self.retention_s = retention_s
        self.results_max_age_s = results_max_age_s
        self._record = client.register_script(_RECORD_LUA)
        self._begin = client.register_script(_BEGIN_LUA)

    def read(self, job_id: str, run: int = 1) -> LedgerEntry:
        """The ledger of ``job_id``, whether ``run`` ended, and the stored job with its current
        run, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.ledger(job_id))
        pipe.get(self.keys.terminal(job_id, run))
        pipe.time()
        pipe.hmget(self.keys.job(job_id), "job", "run", "run_id")
        pipe.get(self.keys.document(job_id))
        raw, terminal, (seconds, micros), (old_doc, current_run, run_id), doc = pipe.execute()
        doc = doc if doc is not None else old_doc  # written before documents had their own key
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        started = fields.get("started_at")
        age = seconds + micros / 1e6 - float(started) if started else 0.0
        return LedgerEntry(
            LedgerState(fields["state"]) if "state" in fields else None,
            int(fields.get("attempt", 0)),
            started,
            age,
            terminal.decode() if isinstance(terminal, bytes) else terminal,
            doc.decode() if doc is not None else None,
            int(current_run or 1),
            run_id.decode() if run_id is not None else "",
        )

    def begin_attempt(
        self, job_id: str, attempt: int, worker: str, *, take_over: str | None = None
    ) -> bool:
        """Mark attempt ``attempt`` in flight before its request goes out.

        False when another attempt is in flight (unless it is ``take_over``, the ``started_at``
        of an attempt known to be dead): two deliveries of one job never send at once.
        """
        reply = self._begin(
            keys=[self.keys.ledger(job_id)], args=[attempt, worker, self.ttl_s, take_over or ""]
        )
        return bool(int(reply))

    def record(
        self,
        job: Job,
        event: ResultEvent,
        *,
        worker: str | None = None,
        request: str | None = None,
        http_status: int | None = None,
    ) -> bool:
        """Write ``event``, the ledger state it implies and the job's timeline entry; False if
        the run already ended or a replay superseded it (the timeline still gets the entry).

        ``worker`` ran the attempt; ``request`` summarises what it sent (method and path, see
        :meth:`~worker.vendors.base.VendorRequest.summary`); ``http_status`` is the vendor's.
        """
        terminal = event.terminal
        dead = event.status in _KEPT_FOR_REPLAY
        entry = TimelineEntry.of_event(
            event, worker=worker, request=request, http_status=http_status
        )
        reply = self._record(
            keys=[
                self.keys.terminal(job.job_id, event.run),
                self.keys.results,
                self.keys.ledger(job.job_id),
                self.keys.dead_letters,
                self.keys.job(job.job_id),
                self.keys.timeline(job.job_id),
                self.keys.dead_events,
                self.keys.document(job.job_id),
            ],
            args=[
                event.event_id,
                event.model_dump_json(exclude_none=True),
                self.results_maxlen,
                "1" if terminal else "0",
                _state_after(event),
                self.ttl_s,
                job.job_id,
                event.status.value,
                json.dumps(_ids(job)) if dead else "",
                entry.to_json(),
                MAX_ENTRIES,
                event.run,
                0 if event.status is EventStatus.IN_DOUBT else self.retention_s,
                self.results_max_age_s,
            ],
        )
        return bool(int(reply[0]))


def _ids(job: Job) -> dict[str, object]:
    """What the dead letters keep of ``job``: everything but the order and the address."""
    doc = job.model_dump(mode="json", exclude_none=True, exclude=set(_PERSONAL_FIELDS))
    doc["order_id"] = job.ref
    return doc
