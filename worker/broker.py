"""kombu's Redis transport, changed so that nothing it takes off a queue is lost.

kombu pops a message (``BRPOP``) and only then parses it and notes it as unacked. Two things can
go wrong in between, and in kombu 5.7 both lose the message and stop the worker ("Unrecoverable
error"):

- the message cannot be read (not JSON, not a Celery envelope): it goes to the
  quarantine with its raw bytes and the reason, and the worker goes on;
- Redis fails while kombu notes it (out of memory, connection lost): it is pushed back where
  the next pop takes it, tried again until Redis accepts it.

Two more rules on messages kombu already holds:

- a message rejected without requeue (Celery does that to a late-ack task that raised, with
  ``task_acks_on_failure=False``) goes to the quarantine instead of away;
- an ack or a requeue that Redis refuses (out of memory, down) is tried again until Redis takes
  it (kombu lets the error stop the worker); if a stop comes first, the message stays unacked in
  Redis and the transport brings it back after the visibility timeout.

And two on a lost connection: the channel closes cleanly even when Redis is gone (kombu leaves it
half closed, and closing it again stops the worker), and only the messages held for no running
job go back to the queue; a running job acks its own when it ends (kombu puts those back too, and
they were delivered again while still running).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from queue import Empty
from typing import Any

import redis
from celery.worker import state as worker_state
from kombu.transport import redis as kombu_redis

from order_dispatch.keys import Keys
from order_dispatch.logs import get_logger
from order_dispatch.settings import get_settings
from worker.outage import is_outage, ride_out
from worker.quarantine import Quarantine, envelope
from worker.shutdown import requested

log = get_logger("worker.broker")


class _PopRecordingRedis(redis.Redis):
    """A redis-py client that remembers the last item ``BRPOP`` handed over, so the channel
    still has it when kombu fails on it."""

    popped: tuple[bytes, bytes] | None = None

    def parse_response(self, connection: Any, command_name: Any, **options: Any) -> Any:
        """The reply, as redis-py parses it; a ``BRPOP`` reply is kept in ``popped``."""
        reply = super().parse_response(connection, command_name, **options)  # type: ignore[no-untyped-call]
        if command_name == "BRPOP" and reply:
            self.popped = (reply[0], reply[1])
        return reply


class QoS(kombu_redis.QoS):
    """kombu's Redis ack emulation, quarantining what it would drop."""

    noted = 0
    """How many messages this channel noted as unacked (kombu holds them from then on)."""

    def append(self, message: Any, delivery_tag: str) -> None:
        """Note ``message`` as delivered and unacked (in Redis and here)."""
        super().append(message, delivery_tag)
        self.noted += 1

    def restore_unacked(self, client: Any | None = None) -> None:
        """Put back, when the channel closes, the messages held for no running job. kombu puts
        back every message not yet acked, running jobs' too: after a lost connection they were
        delivered again while still running, and raced their own outcome."""
        running = {
            getattr(request.message, "delivery_tag", None)
            for request in list(worker_state.active_requests)
        }
        assert self._delivered is not None
        channel: Channel = self.channel  # type: ignore[assignment]
        with channel.conn_or_acquire(client) as conn:
            for tag in list(self._delivered):
                if tag not in running:  # a running job acks its own message when it ends
                    self.restore_by_tag(tag, client=conn)
        self._delivered.clear()

    def ack(self, delivery_tag: str) -> None:
        """Forget the message; through a Redis outage (a full Redis refuses even the removal,
        inside a transaction), tried again until Redis takes it or a stop is requested."""
        self._through_outage(lambda: super(QoS, self).ack(delivery_tag), "ack a message")

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        """Requeue the message, or quarantine it: a rejected message is never dropped."""
        channel: Channel = self.channel  # type: ignore[assignment]
        if requeue:
            self._through_outage(
                lambda: super(QoS, self).reject(delivery_tag, requeue=True), "requeue a message"
            )
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
        super().reject(delivery_tag, requeue=False)

    def _through_outage(self, call: Callable[[], None], what: str) -> None:
        try:
            ride_out(call, what=what, stop=requested)
        except Exception as exc:
            if not is_outage(exc):
                raise
            # Both are one transaction: refused, it left the message unacked in Redis.
            log.warning(
                f"could not {what} while Redis is out; it stays unacked and comes back after "
                "the visibility timeout",
                error=f"{type(exc).__name__}: {exc}",
            )


class Channel(kombu_redis.Channel):
    """kombu's Redis channel; a popped message it cannot take in is kept, not lost."""

    QoS = QoS
    connection_errors: tuple[type[BaseException], ...]

    def close(self) -> None:
        """Close the channel. kombu first reads the reply of a pending ``BRPOP``; when Redis is
        gone that raises and leaves the channel half closed, and closing it again once its
        connection is released stops the worker (``'NoneType' object has no attribute
        'hostname'``). Here the close goes on."""
        try:
            super().close()
        except self.connection_errors:
            super().close()  # the pending read is cleared: this one closes the rest

    def _create_client(self, asynchronous: bool = False) -> Any:
        """A client on the channel's pool. kombu builds a new redis-py client for every
        command it sends outside its consumer (each ack, each note of an unacked message, each
        task event), and redis-py copies its whole table of reply callbacks in each: a fifth of
        a worker's CPU at full speed. The synchronous one is built once per pool here (a
        redis-py client is safe to share between threads; each command takes a connection from
        the pool)."""
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        pool = self.pool
        cached = self.__dict__.get("_shared_client")
        if cached is None or cached.connection_pool is not pool:
            cached = super()._create_client()  # type: ignore[misc]
            self.__dict__["_shared_client"] = cached
        return cached

    def _get_client(self) -> Any:
        client = super()._get_client()  # type: ignore[misc]
        # With a global key prefix kombu uses a client of its own; it then goes unchanged.
        return _PopRecordingRedis if client is redis.Redis else client

    def _brpop_read(self, **options: Any) -> Any:
        client = self.client
        if isinstance(client, _PopRecordingRedis):
            client.popped = None
        qos: QoS = self.qos  # type: ignore[assignment]
        noted = qos.noted
        try:
            return super()._brpop_read(**options)  # type: ignore[misc]
        except Empty:
            raise
        except Exception as exc:
            popped = getattr(client, "popped", None)
            if popped is None or qos.noted != noted:
                raise  # nothing taken off a queue, or kombu holds it (unacked) already
            self._keep(popped, exc)
            raise Empty() from None

    def _keep(self, popped: tuple[bytes, bytes], exc: Exception) -> None:
        """Put a popped message back when Redis failed, else quarantine it."""
        key, raw = popped
        queue = key.decode().rsplit(self.sep, 1)[0]
        if is_outage(exc):
            log.warning(
                "Redis failed while a message was taken off its queue; putting it back",
                queue=queue,
                error=f"{type(exc).__name__}: {exc}",
            )

            def put_back() -> None:
                with self.conn_or_acquire() as client:
                    client.rpush(key, raw)  # the end the next BRPOP takes from

            ride_out(put_back, what="put a message back on its queue", queue=queue)
            return
        self.quarantine(raw, queue=queue, reason=_unreadable(exc))

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


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel` (``broker_transport`` in celeryconfig)."""

    Channel = Channel


def _unreadable(exc: Exception) -> str:
    """Why a popped message could not be taken in."""
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON ({exc.msg}: line {exc.lineno} column {exc.colno})"
    if isinstance(exc, KeyError):
        return f"not a Celery message: it has no {exc.args[0]!r} field"
    return f"not a Celery message ({type(exc).__name__}: {exc})"
