"""kombu's Redis transport with a reliable fetch (:mod:`worker.fetch`), so that nothing it takes
off a queue is lost and a dead worker's messages come back within seconds.

kombu pops a message (``BRPOP``) and only then notes it as unacked; a message popped in the
instant Redis stops exists only in the lost reply, and a dead worker's messages come back only
after the visibility timeout. Here:

- a take moves the message to this worker's held list in one step (a Lua script over the
  queue lists, priorities in order); when every queue is empty the worker waits
  ``fetch_idle_poll_s`` on the server before it looks again;
- an ack removes it from the held list; a requeue puts it back on its queue; a message
  rejected without requeue (Celery does that to a late-ack task that raised, with
  ``task_acks_on_failure=False``) goes to the quarantine, then off the held list;
- a message that cannot be read (not JSON, not a Celery envelope) goes to the quarantine with
  its raw bytes and the reason, and the worker goes on;
- an ack or a requeue that Redis refuses (out of memory, down) is tried again until Redis takes
  it or a stop is requested; then the message stays in the held list, and comes back when this
  worker's heartbeat lapses;
- after a connection lost during a take, the worker gives back every held message it does not
  hold in memory (the take happened, its reply was lost).

And two on a lost connection: the channel closes cleanly even when Redis is gone (kombu leaves it
half closed, and closing it again stops the worker), and only the messages held for no running
job go back to the queue; a running job acks its own when it ends (kombu puts those back too, and
they were delivered again while still running).

Messages a worker of an earlier release left in kombu's ``unacked`` hash still come back after
the visibility timeout (kombu's own sweep, kept).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from queue import Empty
from time import monotonic
from typing import Any

from celery.worker import state as worker_state
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str

from order_dispatch.contract import WEBHOOKS
from order_dispatch.keys import Keys
from order_dispatch.logs import get_logger
from order_dispatch.settings import get_settings
from worker import fetch
from worker.outage import is_outage, ride_out
from worker.quarantine import Quarantine, envelope
from worker.shutdown import requested
from worker.take_order import take_order

log = get_logger("worker.broker")


class QoS(kombu_redis.QoS):
    """Acks and requeues on the held list (:mod:`worker.fetch`); what kombu would drop goes to
    the quarantine."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._items: dict[str, bytes] = {}
        """Delivery tag -> held-list element, for the messages this channel took."""
        self._given_back = set()

    @property
    def _channel(self) -> Channel:
        channel: Channel = self.channel  # type: ignore[assignment]
        return channel

    def append(self, message: Any, delivery_tag: str) -> None:
        """Note ``message`` as delivered and unacked: in memory only, the take already holds it
        in Redis (a message from elsewhere, kombu's ``basic_get``, goes kombu's way)."""
        item = self._channel.take_delivered()
        if item is None:
            super().append(message, delivery_tag)
            return
        self._items[delivery_tag] = item
        fetch.held.add(item)
        virtual.QoS.append(self, message, delivery_tag)

    def restore_unacked(self, client: Any | None = None) -> None:
        """Put back, when the channel closes, the messages held for no running job. kombu puts
        back every message not yet acked, running jobs' too: after a lost connection they were
        delivered again while still running, and raced their own outcome."""
        # Reserved requests run too (a thread pool's queue), and ack their own messages.
        requests = [*worker_state.active_requests, *worker_state.reserved_requests]
        running = {getattr(request.message, "delivery_tag", None) for request in requests}
        assert self._delivered is not None
        channel = self._channel
        for tag in list(self._delivered):
            if tag in running:
                continue  # a running job acks its own message when it ends
            item = self._items.pop(tag, None)
            if item is None:
                with channel.conn_or_acquire(client) as conn:
                    self.restore_by_tag(tag, client=conn)
                continue
            self._given_back.add(tag)
            fetch.held.discard(item)
            try:
                channel.fetcher.give_back(item, front=True)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                fetch.held.reconcile_needed = True  # still in the held list: given back later
        self._delivered.clear()

    def ack(self, delivery_tag: str) -> None:
        """Forget the message; through a Redis outage (a full Redis refuses even the removal),
        tried again until Redis takes it or a stop is requested."""
        item = self._items.get(delivery_tag)
        if item is None:
            if self._kombus(delivery_tag):
                self._through_outage(lambda: super(QoS, self).ack(delivery_tag), "ack a message")
            else:
                virtual.QoS.ack(self, delivery_tag)  # given back when its channel closed
            return
        if self._through_outage(lambda: self._channel.fetcher.ack(item), "ack a message"):
            fetch.held.discard(item)
            self._items.pop(delivery_tag, None)
        virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        """Requeue the message, or quarantine it: a rejected message is never dropped."""
        channel = self._channel
        item = self._items.get(delivery_tag)
        if requeue:
            if item is None and not self._kombus(delivery_tag):
                virtual.QoS.ack(self, delivery_tag)  # given back when its channel closed
                return
            if item is None:
                self._through_outage(
                    lambda: super(QoS, self).reject(delivery_tag, requeue=True),
                    "requeue a message",
                )
                return
            if self._through_outage(
                lambda: channel.fetcher.give_back(item, front=False), "requeue a message"
            ):
                fetch.held.discard(item)
                self._items.pop(delivery_tag, None)
            virtual.QoS.ack(self, delivery_tag)
            return
        message = self._delivered.get(delivery_tag) if self._delivered is not None else None
        if message is not None:
            headers = message.headers or {}
            channel.quarantine(
                envelope(message),
                queue=(message.delivery_info or {}).get("routing_key") or "",
                reason="rejected by the worker without requeue (the task failed; the worker's "
                "log has why)",
                task=headers.get("task"),
                task_id=headers.get("id"),
            )
        if item is None:
            if self._kombus(delivery_tag):
                super().reject(delivery_tag, requeue=False)
            else:
                virtual.QoS.ack(self, delivery_tag)
            return
        if self._through_outage(lambda: channel.fetcher.ack(item), "drop a quarantined message"):
            fetch.held.discard(item)
            self._items.pop(delivery_tag, None)
        virtual.QoS.ack(self, delivery_tag)

    def _kombus(self, delivery_tag: str) -> bool:
        """True for a message kombu noted in its own unacked hash (taken with ``basic_get``),
        on a channel still open."""
        return delivery_tag not in self._given_back and self._channel.connection is not None

    _given_back: set[str]

    def _through_outage(self, call: Callable[[], Any], what: str) -> bool:
        """``call()`` through an outage; False when a stop came first (the message stays in
        Redis: in the held list, given back once this worker's heartbeat lapses)."""
        try:
            ride_out(call, what=what, stop=requested)
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning(
                f"could not {what} while Redis is out; the message stays held and goes back "
                "to its queue once this worker's heartbeat lapses",
                error=f"{type(exc).__name__}: {exc}",
            )
            return False
        return True


class Channel(kombu_redis.Channel):
    """kombu's Redis channel, taking messages with the reliable fetch of :mod:`worker.fetch`."""

    QoS = QoS
    connection_errors: tuple[type[BaseException], ...]
    _waiting = False
    """The command in flight is the idle wait, not a take."""
    _idle = False
    """The last take found every queue empty: wait before the next."""
    _takes = 0
    """Takes started: which of :func:`worker.take_order.take_order`'s turns is next."""

    _delivered_item: bytes | None = None

    @functools.cached_property
    def _keys(self) -> Keys:
        """The key names of this worker's prefix (the settings do not change while it runs)."""
        return Keys(get_settings().key_prefix)

    @property
    def fetcher(self) -> fetch.Fetcher:
        """The held list's operations, for this process's worker id, on a client of their own:
        a running job acks its message after the channel that took it has closed (a lost
        connection), and kombu's closed channel has no pool left."""
        return fetch.fetcher()

    def basic_consume(self, queue: str, *args: Any, **kwargs: Any) -> Any:
        """Consume ``queue``; the first consumer of the process starts its heartbeat (and the
        sweep), before any take."""
        fetch.ensure_liveness()
        return super().basic_consume(queue, *args, **kwargs)

    def take_delivered(self) -> bytes | None:
        """The held-list element of the message being delivered (once)."""
        item, self._delivered_item = self._delivered_item, None
        return item

    def close(self) -> None:
        """Close the channel. kombu first reads the reply of a pending take; when Redis is
        gone that raises and leaves the channel half closed, and closing it again once its
        connection is released stops the worker (``'NoneType' object has no attribute
        'hostname'``). Here the close goes on."""
        try:
            super().close()
        except self.connection_errors:
            super().close()  # the pending read is cleared: this one closes the rest

    def _create_client(self, asynchronous: bool = False) -> Any:
        """A client on the channel's pool. kombu builds a new redis-py client for every
        command it sends outside its consumer (each ack, each task event), and redis-py copies
        its whole table of reply callbacks in each: a fifth of a worker's CPU at full speed.
        The synchronous one is built once per pool here (a redis-py client is safe to share
        between threads; each command takes a connection from the pool)."""
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        pool = self.pool
        cached = self.__dict__.get("_shared_client")
        if cached is None or cached.connection_pool is not pool:
            cached = super()._create_client()  # type: ignore[misc]
            self.__dict__["_shared_client"] = cached
        return cached

    def _brpop_start(self, timeout: float | None = None) -> None:
        """Send the next take (or, after an empty one, the idle wait) on the consuming
        connection; its reply is read by :meth:`_brpop_read` when it arrives."""
        queues = self._queue_cycle.consume(len(self.active_queues))  # type: ignore[attr-defined]
        if not queues:
            return
        self._takes += 1
        queues = take_order(queues, self._keys.queue(WEBHOOKS), self._takes)
        if fetch.held.reconcile_needed and not self._idle:
            self._reconcile()
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()
        settings = get_settings()
        if self._idle:
            self._waiting = True
            # A server-side pause (BLPOP's timeout takes fractions) that an enqueue to one of
            # these queues cuts short with a wake token: the first job after a quiet spell waits
            # for no poll.
            wake = [self._keys.fetch_wake(queue) for queue in queues]
            self.client.connection.send_command("BLPOP", *wake, settings.fetch_idle_poll_s)
            return
        self._waiting = False
        keys = [
            self._q_for_pri(queue, pri)  # type: ignore[attr-defined]
            for pri in self.priority_steps
            for queue in queues
        ]
        held_key = self._keys.fetch_held(fetch.identity())
        self.client.connection.send_command("EVAL", fetch.TAKE_LUA, 1 + len(keys), held_key, *keys)

    def _reconcile(self) -> None:
        try:
            self.fetcher.reconcile()
        except Exception as exc:
            if not is_outage(exc):
                raise
            return  # still out: the next take tries again
        fetch.held.reconcile_needed = False

    def _brpop_read(self, **options: Any) -> Any:
        waiting = self._waiting
        try:
            try:
                reply = self.client.parse_response(
                    self.client.connection, "BLPOP" if waiting else "EVAL", **options
                )
            except self.connection_errors:
                # The take may have happened, its reply lost: give back what nobody holds.
                if not waiting:
                    fetch.held.reconcile_needed = True
                self.client.connection.disconnect()
                raise
            except self.ResponseError as exc:
                # Refused before its first write (out of memory, read-only...): nothing moved.
                self._idle = True
                self._log_refused_take(exc)
                raise Empty() from None
            if waiting:
                self._idle = False
                raise Empty()
            if not reply:
                self._idle = True
                raise Empty()
            key, raw = reply
            self._deliver_taken(fetch.element(key, raw), bytes_to_str(key), raw)
            return True
        finally:
            self._in_poll = None
            self._waiting = False
            self._flush_brpop_reauth()  # type: ignore[attr-defined]

    _refused_logged_at = 0.0

    def _log_refused_take(self, exc: Exception) -> None:
        if monotonic() - self._refused_logged_at < 5:
            return
        self._refused_logged_at = monotonic()
        if is_outage(exc):
            log.warning("Redis refused a take; trying again", error=f"{type(exc).__name__}: {exc}")
        else:
            log.error("a take failed; trying again", error=f"{type(exc).__name__}: {exc}")

    def _deliver_taken(self, item: bytes, key: str, raw: bytes) -> None:
        queue = key.rsplit(self.sep, 1)[0]
        self._queue_cycle.rotate(queue)  # type: ignore[attr-defined]
        self._delivered_item = item
        try:
            self.connection._deliver(json.loads(bytes_to_str(raw)), queue)
        except Exception as exc:
            if self._delivered_item is None or is_outage(exc):
                raise  # kombu holds it (QoS), or Redis failed: it stays held
            self._delivered_item = None
            self.quarantine(raw, queue=queue, reason=_unreadable(exc))
            self._drop(item)
            raise Empty() from None
        if self._delivered_item is not None:
            # Delivered with no ack to wait for (a no-ack consumer): nothing more to hold.
            self._delivered_item = None
            self._drop(item)

    def _drop(self, item: bytes) -> None:
        ride_out(lambda: self.fetcher.ack(item), what="drop a taken message", stop=requested)

    def quarantine(
        self,
        raw: bytes | str,
        *,
        queue: str,
        reason: str,
        task: str | None = None,
        task_id: str | None = None,
        job_id: str | None = None,
    ) -> str:
        """Keep ``raw`` in the quarantine with ``reason``; the entry id."""
        with self.conn_or_acquire() as client:
            keys = Keys(get_settings().key_prefix)
            return Quarantine(client, keys).put(
                raw, queue=queue, reason=reason, task=task, task_id=task_id, job_id=job_id
            )


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """:class:`Channel` on the master that Redis Sentinel names (kombu's ``sentinel://``)."""


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel` (``broker_transport`` in celeryconfig)."""

    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    """kombu's Redis Sentinel transport with :class:`SentinelChannel` (celeryconfig's
    ``broker_transport`` when ``redis_sentinels`` is set)."""

    Channel = SentinelChannel


def _unreadable(exc: Exception) -> str:
    """Why a popped message could not be taken in."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg}: line {exc.lineno} column {exc.colno})"
    if isinstance(exc, KeyError):
        return f"not a Celery message: it has no {exc.args[0]!r} field"
    return f"not a Celery message ({type(exc).__name__}: {exc})"
