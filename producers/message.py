"""The task message format, from :mod:`order_dispatch.broker` (shared with the worker, whose
durable retry schedule writes the same messages)."""

from order_dispatch.broker import dispatch_kwargs, queue_key, task_message
from order_dispatch.keys import DISPATCH_TASK

__all__ = ["DISPATCH_TASK", "dispatch_kwargs", "queue_key", "task_message"]
