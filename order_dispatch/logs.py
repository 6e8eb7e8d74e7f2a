"""Structured JSON logs (structlog), with secrets and customers' personal data masked before
anything is written.

Secrets are masked everywhere (:mod:`order_dispatch.redact`); the personal values of the job a
thread is running are masked in every line it writes (:func:`order_dispatch.privacy.scope`);
and the messages Celery and kombu write about a message they cannot run (an unknown task name,
an invalid or undecodable message) lose the message body they would quote whole.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from order_dispatch import privacy, redact

#: What a message body is replaced with in Celery's and kombu's own log lines.
BODY_NOT_LOGGED = "(message body not logged: it may hold customer data)"
# Where Celery's consumer messages start quoting a message (celery/worker/consumer/consumer.py:
# UNKNOWN_TASK_ERROR, INVALID_TASK_ERROR, MESSAGE_DECODE_ERROR, UNKNOWN_FORMAT).
_BODY_MARKERS = ("The full contents of the message", "body:", "Can't decode message body")
_LONGEST_ARG = 120


def _mask_secrets(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if redact.is_secret_key(key) and value:
            event_dict[key] = redact.MASK
        elif value is not None and not isinstance(value, bool | int | float):
            event_dict[key] = _masked(value)
    return event_dict


def _masked(node: Any) -> Any:
    """``node`` (a string, mapping, list or scalar) with secrets and the scope's personal
    values masked: one walk, as :func:`redact.value` then :func:`privacy.masked_in_scope`."""
    if isinstance(node, str):
        return privacy.masked_in_scope(redact.text(node))
    if isinstance(node, Mapping):
        return {
            k: (redact.MASK if isinstance(k, str) and redact.is_secret_key(k) and v else _masked(v))
            for k, v in node.items()
        }
    if isinstance(node, list | tuple):
        return [_masked(v) for v in node]
    return node


class MessageBodyFilter(logging.Filter):
    """Cuts the quoted message out of Celery's and kombu's lines about messages they cannot
    run: the first line is kept (each argument cut short), the body is not."""

    def filter(self, record: logging.LogRecord) -> bool:
        template = str(record.msg)
        if not any(marker in template for marker in _BODY_MARKERS):
            return True
        head = template.split("\n", 1)[0]
        raw = record.args if isinstance(record.args, tuple) else ()
        if "Can't decode message body" in head:
            head = "Can't decode a message (%s)"
            args: tuple[Any, ...] = (type(raw[0]).__name__ if raw else "?",)
        else:
            wanted = head.count("%s") + head.count("%r")
            args = tuple(str(a)[:_LONGEST_ARG] for a in raw[:wanted])
            if len(args) < wanted:
                head, args = head.replace("%r", "%s").replace("%s", "?"), ()
        record.msg = f"{head.rstrip()} {BODY_NOT_LOGGED}"
        record.args = args
        record.exc_info = None
        record.exc_text = None
        return True


def configure(level: str = "INFO", *, json: bool = True) -> None:
    """Send structlog and stdlib logging to stderr as JSON lines (or console text)."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _mask_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(MessageBodyFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; vendor URLs can carry credentials in the query.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger (stdlib-backed, as :func:`configure` sets it up)."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
