"""Reliable fetch: what a worker takes off a queue is in Redis until it is acked or given back.

Each worker process has an id (:func:`identity`), a list of the messages it holds
(``<prefix>:fetch:held:<id>``) and a heartbeat (``<prefix>:fetch:alive:<id>``, a key with a TTL
of ``fetch_dead_after_s``, renewed every ``fetch_heartbeat_s``).

- **Take**: one Lua script moves a message from the first non-empty queue list (priorities in
  order) to the held list, as ``<queue list>\\n<message>``: in one step, so no message exists
  only in a reply on its way to the worker (kombu's ``BRPOP`` loses such a message when Redis
  stops at that instant).
- **Wait**: a worker whose queues were all empty waits up to ``fetch_idle_poll_s`` on its
  queues' wake lists (``BLPOP``, a server-side wait), into which every enqueue of the producer
  API pushes a token for the job's queue: the first job after a quiet spell is taken at once,
  not at the next look, and by a worker that serves its vendor (a worker serving other vendors
  never takes the token).
- **Ack**: the message leaves the held list. **Requeue**: it goes back to its queue list and
  leaves the held list, in one step.
- **Sweep**: every worker, when it starts and then every ``fetch_sweep_s``, gives back the held
  messages of every worker whose heartbeat is gone, or whose process is known gone (a worker of
  the same host and process namespace whose pid no longer runs: a supervisor's restart recovers
  at once, without waiting for the heartbeat to lapse), and ends the lease of the attempts such a
  worker had in flight (its id is the ledger's ``worker``): a dead worker's jobs run again
  within seconds of ``fetch_dead_after_s``, not after a visibility timeout. A sweep waits until
  Redis has been up for ``fetch_dead_after_s``: after a Redis restart every heartbeat is old.
- **Reconcile**: a take whose reply was lost (connection cut) left a message in this worker's
  held list that no one runs; after such a loss the worker gives back every held message it
  does not hold in memory.

The ledger's lease remains the guard against two deliveries of one job at once: a delivery of a
job whose attempt is in flight waits for the lease, unless the sweep ended it because the worker
that held it is dead.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import redis

from order_dispatch.broker import message_job
from order_dispatch.keys import Keys
from order_dispatch.logs import get_logger
from order_dispatch.redis_client import redis_client
from order_dispatch.results import process_name
from order_dispatch.settings import Settings, get_settings
from worker.outage import is_outage

log = get_logger("worker.fetch")

SEP = b"\n"

# KEYS: held list, then the queue lists in the order to serve them. Peek, write the held copy,
# then pop: the first write is the one a full Redis refuses (OOM), so a refusal moves nothing.
TAKE_LUA = """
for i = 2, #KEYS do
  local item = redis.call('LINDEX', KEYS[i], -1)
  if item then
    redis.call('LPUSH', KEYS[1], KEYS[i] .. '\\n' .. item)
    redis.call('RPOP', KEYS[i])
    return {KEYS[i], item}
  end
end
return false
"""

# KEYS: held list. ARGV: element, 'front' (taken next) or 'back' (taken last).
_GIVE_BACK_LUA = """
if not redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
local cut = string.find(ARGV[1], '\\n', 1, true)
local queue, raw = string.sub(ARGV[1], 1, cut - 1), string.sub(ARGV[1], cut + 1)
if ARGV[2] == 'front' then redis.call('RPUSH', queue, raw) else redis.call('LPUSH', queue, raw) end
redis.call('LREM', KEYS[1], 1, ARGV[1])
return 1
"""

# KEYS: dead worker's heartbeat, its held list, the workers hash, then one ledger key per
# element ('' for a message that names no job). ARGV: dead worker's id, the lease (s), '1' when
# its process is known gone (else nothing happens while its heartbeat is there), then the
# elements. An attempt the dead worker had in
# flight gets a started_at one lease old: the next delivery takes it over as interrupted.
_RECOVER_LUA = """
if ARGV[3] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local t = redis.call('TIME')
local expired = tonumber(t[1]) - tonumber(ARGV[2]) - 1
local returned = 0
for i = 4, #ARGV do
  local el = ARGV[i]
  if redis.call('LPOS', KEYS[2], el) then
    local ledger = KEYS[i]
    if ledger ~= '' and redis.call('HGET', ledger, 'state') == 'in_flight'
        and redis.call('HGET', ledger, 'worker') == ARGV[1] then
      redis.call('HSET', ledger, 'started_at', string.format('%d.%06d', expired, tonumber(t[2])),
        'lease_ended', 'worker ' .. ARGV[1] .. ' lost its heartbeat')
    end
    local cut = string.find(el, '\\n', 1, true)
    redis.call('RPUSH', string.sub(el, 1, cut - 1), string.sub(el, cut + 1))
    redis.call('LREM', KEYS[2], 1, el)
    returned = returned + 1
  end
end
if redis.call('LLEN', KEYS[2]) == 0 then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[1])
end
return returned
"""

# KEYS: heartbeat, held list, workers hash. ARGV: id. A clean exit with nothing held.
_LEAVE_LUA = """
if redis.call('LLEN', KEYS[2]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""

#: Elements handed to one recovery script.
_RECOVER_BATCH = 100

_identity: tuple[int, str] | None = None


def identity() -> str:
    """This process's worker id: ``host-pid-<random>`` (a restarted process with the same pid,
    pid 1 in a container, gets another). The ledger names the attempts' worker with it."""
    global _identity
    if _identity is None or _identity[0] != os.getpid():
        _identity = (os.getpid(), f"{process_name()}-{secrets.token_hex(3)}")
    return _identity[1]


def _host_marker() -> str:
    """What tells two processes apart as seen from one host: the boot and the pid namespace
    (Linux); empty elsewhere (then only heartbeats tell a dead worker)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}:{namespace}"


def _process_gone(pid: int) -> bool:
    """True when ``pid`` runs no process here (or only a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def registration() -> str:
    """This process's entry in the workers hash (JSON: start, pid, host marker)."""
    return json.dumps({"at": round(time.time(), 3), "pid": os.getpid(), "host": _host_marker()})


def known_gone(worker: str, entry: str) -> bool:
    """True when the worker of ``entry`` (its workers-hash value) ran on this host, in this
    process namespace, and its process is gone (or this very process reused its pid)."""
    try:
        found = json.loads(entry)
        pid, host = int(found["pid"]), str(found["host"])
    except (ValueError, KeyError, TypeError):
        return False
    if not host or host != _host_marker():
        return False
    if pid == os.getpid():
        return worker != identity()
    return _process_gone(pid)


def element(queue_list: bytes, raw: bytes) -> bytes:
    """How the held list stores ``raw`` taken from ``queue_list``."""
    return queue_list + SEP + raw


def split(item: bytes) -> tuple[bytes, bytes]:
    """(queue list, message) of a held-list element."""
    queue_list, _, raw = item.partition(SEP)
    return queue_list, raw


class Held:
    """The held-list elements this process holds in memory (delivered, not yet acked), across
    its channels; what the held list has beyond them nobody runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: Counter[bytes] = Counter()
        self.reconcile_needed = False
        """Set when a take's reply or a give-back may have been lost."""

    def add(self, item: bytes) -> None:
        """Note ``item`` as held."""
        with self._lock:
            self._items[item] += 1

    def discard(self, item: bytes) -> None:
        """Forget ``item`` (acked, given back, or left in Redis for the reconcile)."""
        with self._lock:
            self._items[item] -= 1
            if self._items[item] <= 0:
                del self._items[item]

    def unheld(self, listed: Iterable[bytes]) -> list[bytes]:
        """The elements of ``listed`` (the held list as read) this process does not hold."""
        with self._lock:
            extra = Counter(listed) - self._items
        return list(extra.elements())


held = Held()


class Fetcher:
    """The held list's operations for one worker id, on one Redis client."""

    def __init__(self, client: redis.Redis, keys: Keys, worker: str) -> None:
        self.client = client
        self.keys = keys
        self.worker = worker
        self.held_key = keys.fetch_held(worker)
        self._give_back = client.register_script(_GIVE_BACK_LUA)

    def ack(self, item: bytes) -> None:
        """Drop ``item`` from the held list."""
        self.client.lrem(self.held_key, 1, item)  # type: ignore[arg-type]

    def give_back(self, item: bytes, *, front: bool) -> bool:
        """Put ``item`` back on its queue (``front``: taken next) and off the held list; False
        when it was no longer held (acked or given back already)."""
        where = "front" if front else "back"
        return bool(self._give_back(keys=[self.held_key], args=[item, where]))

    def reconcile(self) -> int:
        """Give back every held message this process does not hold in memory; how many."""
        listed: list[bytes] = self.client.lrange(self.held_key, 0, -1)  # type: ignore[assignment]
        returned = 0
        for item in held.unheld(listed):
            returned += self.give_back(item, front=True)
        if returned:
            log.warning("messages whose take was cut off went back to their queues", count=returned)
        return returned


class Liveness:
    """This process's heartbeat, and the sweep that gives back dead workers' messages."""

    def __init__(self, settings: Settings, worker: str | None = None) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.worker = worker or identity()
        self.client = redis_client(settings, socket_timeout=5, socket_connect_timeout=5)
        self._recover = self.client.register_script(_RECOVER_LUA)
        self._leave = self.client.register_script(_LEAVE_LUA)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lapsed_logged = False

    @property
    def ttl_ms(self) -> int:
        return int(self.settings.fetch_dead_after_s * 1000)

    def register(self) -> None:
        """Beat once and enter the workers hash: before the first take."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.fetch_alive(self.worker), "1", px=self.ttl_ms)
        pipe.hset(self.keys.fetch_workers, self.worker, registration())
        pipe.execute()

    def start(self) -> Liveness:
        """Register, then beat and sweep in a daemon thread (the first sweep at once)."""
        self.register()
        self._thread = threading.Thread(target=self._loop, name="fetch-heartbeat", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        next_beat = next_sweep = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + self.settings.fetch_heartbeat_s
                self._step(self.beat)
            if now >= next_sweep:
                next_sweep = now + self.settings.fetch_sweep_s
                self._step(self.sweep)
            self._stop.wait(max(0.0, min(next_beat, next_sweep) - time.monotonic()))

    def _step(self, step: Callable[[], object]) -> None:
        try:
            step()
        except Exception as exc:
            if not is_outage(exc):
                log.exception("heartbeat or sweep failed", step=step.__name__)

    def beat(self) -> None:
        """Renew the heartbeat; log loudly if it had lapsed (a sweep may have given this
        worker's messages to others: their leases still guard the jobs it runs)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.fetch_alive(self.worker), "1", px=self.ttl_ms, get=True)
        pipe.hsetnx(self.keys.fetch_workers, self.worker, registration())
        previous, _ = pipe.execute()
        if previous is None and not self._lapsed_logged:
            self._lapsed_logged = True
            log.error(
                "this worker's heartbeat had lapsed; a sweep may have given its messages back",
                worker=self.worker,
            )
        elif previous is not None:
            self._lapsed_logged = False

    def sweep(self) -> int:
        """Give back the messages of every worker whose heartbeat is gone, or whose process
        is known gone; how many."""
        workers = {
            _text(w): _text(e) for w, e in self.client.hgetall(self.keys.fetch_workers).items()
        }
        gone = [w for w, e in workers.items() if w != self.worker and known_gone(w, e)]
        returned = sum(self.recover(w, gone=True) for w in gone)
        uptime = int(self.client.info("server").get("uptime_in_seconds", 0))
        if uptime < self.settings.fetch_dead_after_s:
            return returned  # after a restart no heartbeat is fresh yet
        others = [w for w in workers if w != self.worker and w not in gone]
        pipe = self.client.pipeline(transaction=False)
        for worker in others:
            pipe.exists(self.keys.fetch_alive(worker))
        alive = pipe.execute() if others else []
        return returned + sum(
            self.recover(w) for w, up in zip(others, alive, strict=True) if not up
        )

    def recover(self, worker: str, *, gone: bool = False) -> int:
        """Give back the held messages of ``worker`` if its heartbeat is gone (or ``gone``:
        its process is known gone); how many."""
        held_key = self.keys.fetch_held(worker)
        returned = 0
        while True:
            items: list[bytes] = self.client.lrange(held_key, -_RECOVER_BATCH, -1)  # type: ignore[assignment]
            ledgers = [self._ledger_of(item) for item in items]
            reply = int(
                self._recover(
                    keys=[
                        self.keys.fetch_alive(worker),
                        held_key,
                        self.keys.fetch_workers,
                        *ledgers,
                    ],
                    args=[worker, self.settings.lease_s, "1" if gone else "0", *items],
                )
            )
            if reply < 0:
                break  # it beat again
            returned += reply
            if not items:
                break
        if returned:
            log.warning(
                "a dead worker's messages went back to their queues", worker=worker, count=returned
            )
        return returned

    def _ledger_of(self, item: bytes) -> str:
        job = message_job(split(item)[1])
        job_id = job.get("job_id") if job else None
        return self.keys.ledger(job_id) if isinstance(job_id, str) else ""

    def stop(self) -> None:
        """Stop beating; leave the workers hash if nothing is held (else the sweep of another
        worker gives the rest back once the heartbeat lapses)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self._leave(
                keys=[
                    self.keys.fetch_alive(self.worker),
                    self.keys.fetch_held(self.worker),
                    self.keys.fetch_workers,
                ],
                args=[self.worker],
            )
        except redis.RedisError as exc:
            log.warning("could not leave the workers hash", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.client.close()


_lock = threading.Lock()
_fetcher: tuple[int, Fetcher] | None = None


def fetcher(settings: Settings | None = None) -> Fetcher:
    """This process's :class:`Fetcher`, on a client of its own."""
    global _fetcher
    with _lock:
        if _fetcher is None or _fetcher[0] != os.getpid():
            settings = settings or get_settings()
            client = redis_client(settings, health_check_interval=25)
            _fetcher = (os.getpid(), Fetcher(client, Keys(settings.key_prefix), identity()))
        return _fetcher[1]


_liveness: Liveness | None = None
_liveness_pid = 0


def ensure_liveness(settings: Settings | None = None) -> Liveness:
    """This process's :class:`Liveness`, started on first use (before its first take)."""
    global _liveness, _liveness_pid
    with _lock:
        if _liveness is None or _liveness_pid != os.getpid():
            _liveness = Liveness(settings or get_settings()).start()
            _liveness_pid = os.getpid()
        return _liveness


def stop_liveness() -> None:
    """Stop this process's heartbeat (a clean exit), if it runs."""
    global _liveness
    with _lock:
        liveness, _liveness = _liveness, None
    if liveness is not None and _liveness_pid == os.getpid():
        liveness.stop()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
