"""Celery settings for the dispatch workers, derived from :class:`order_dispatch.settings.Settings`.

Why each choice (see ARCHITECTURE.md and ANCHORS.md section C):
- JSON only: no pickle from a shared Redis.
- Late acks and a prefetch multiplier of 1: a job is acknowledged after it ran, and a worker
  holds no more than it is running, so a killed worker leaves its jobs for another. The thread
  pool already reserves one message per thread; a higher multiplier holds jobs no thread runs
  (they wait for its heartbeat to lapse if the worker dies), and gains nothing: at 50 ms vendor
  latency a multiplier of 4 measured 184-189 orders/s against 208-215 for 1.
- Nothing received is dropped: the transport (``worker.broker``) quarantines what it cannot
  read and puts back what it popped when Redis failed; the consumer (``worker.consumer``)
  quarantines what it cannot route; the task quarantines what cannot run and waits out a Redis
  outage. Each setting below says its part.
- Visibility timeout above the task time limit plus the longest retry wait (checked by
  Settings), so a waiting or running task is never redelivered while it is still alive.
- One queue per vendor (``od.<vendor>``) so a slow vendor cannot starve the others.
- With RabbitMQ as the broker (``ORDER_DISPATCH_BROKER_URL=amqp://...``) the queues are quorum
  queues; the visibility timeout and the restore sweeps are Redis-only.
- Task events on, for Flower; no result backend (results go to the product's stream).
"""

# Only Celery settings are public names here: Celery reads every public name of this module as
# a setting (and ``inspect conf`` shows them), so helpers are imported under private names.
import ssl as _ssl

from order_dispatch.keys import queue_for as _queue_for
from order_dispatch.redis_client import broker_transport_options as _sentinel_options
from order_dispatch.redis_client import broker_url as _broker_url
from order_dispatch.settings import get_settings as _get_settings

_settings = _get_settings()

broker_url = _broker_url(_settings)
if _settings.broker_is_redis:
    # kombu's Redis transport with a reliable fetch (worker.broker, worker.fetch): a message
    # moves to the worker's held list in one step, and a dead worker's go back within seconds.
    # With Sentinel, kombu's Sentinel transport with the same fetch.
    broker_transport = (
        "worker.broker:SentinelTransport" if _settings.sentinels else "worker.broker:Transport"
    )
    if broker_url.startswith("rediss://"):
        # kombu turns TLS on from the URL scheme only when it picks the transport itself.
        broker_use_ssl = {"ssl_cert_reqs": _ssl.CERT_REQUIRED}
# Quarantines what Celery would log whole and delete (unknown task, bad envelope), and refuses a
# Redis without append-only persistence at every connection.
worker_consumer = "worker.consumer:Consumer"
broker_connection_retry_on_startup = True
broker_connection_max_retries = None
if _settings.broker_is_redis:
    broker_transport_options = {
        # Only for messages an earlier release left in kombu's unacked hash: a dead worker's
        # messages now come back when its heartbeat lapses (fetch_dead_after_s).
        "visibility_timeout": _settings.effective_visibility_timeout_s,
        "unacked_restore_interval": _settings.restore_interval_s,
        "unacked_restore_throttle": _settings.restore_throttle,
        "socket_keepalive": True,
        "health_check_interval": 25,
        **_sentinel_options(_settings),
    }
else:
    # RabbitMQ: quorum queues (replicated, durable; a dead consumer's messages come back at
    # once), and confirmed publishes so a retry message is never silently lost.
    broker_transport_options = {"confirm_publish": True}
    task_default_queue_type = "quorum"
    task_create_missing_queue_type = "quorum"
    worker_detect_quorum_queues = True
result_backend = None
task_ignore_result = True

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
event_serializer = "json"

# Ack after the job ran: a worker killed mid-job leaves its message unacked for another.
task_acks_late = True
# A task that raised is rejected without requeue (Celery 5.7, late acks). The task raises only
# for a defect outside its own handling, and the transport quarantines what is rejected without
# requeue; acking would delete it silently. One exception: a delivery that ended rejected,
# dead-lettered or in doubt ends its task in FAILURE (what Flower shows) after its outcome was
# recorded, and the dispatch task's request (worker.outcome) acks that message.
task_acks_on_failure = False
# A time limit that fires requeues the message (the next delivery reconciles the attempt).
task_acks_on_timeout = False
# A pool process that dies mid-job requeues its message (prefork; threads cannot die alone).
task_reject_on_worker_lost = True
# The worker holds no more messages than it runs, so a killed worker strands few.
worker_prefetch_multiplier = 1
# On a lost broker connection, running jobs go on: the thread pool cannot cancel them anyway,
# and their result is recorded once Redis is back (the pipeline waits for it), then acked.
worker_cancel_long_running_tasks_on_connection_loss = False
# No worker_soft_shutdown_timeout: Celery's cold shutdown (which it bounds) tries to kill running
# jobs, and stops a thread pool with an error. worker.shutdown bounds a warm stop (SIGTERM) by
# shutdown_timeout_s and makes SIGQUIT hand the running jobs back to the queue at once.

task_time_limit = _settings.task_time_limit_s
task_soft_time_limit = max(1, _settings.task_time_limit_s - 30)

task_default_queue = _queue_for("default", _settings.key_prefix)
task_create_missing_queues = True

worker_send_task_events = _settings.task_events
task_send_sent_event = False
worker_hijack_root_logger = False
worker_redirect_stdouts = False
enable_utc = True
