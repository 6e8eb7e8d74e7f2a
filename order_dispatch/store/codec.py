"""Reading the job store's replies: bytes to text, JSON to objects, epoch seconds."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from order_dispatch.contract import ResultEvent


class JobNotFound(LookupError):
    """The job id is neither in the job store nor in the dead letters."""


def text(value: Any) -> str | None:
    """A Redis reply as text (None stays None)."""
    return value.decode() if isinstance(value, bytes) else value


def as_object(text: str | None) -> dict[str, Any]:
    """``text`` as a JSON object, or an empty one when it is not."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def as_event(raw: Any) -> ResultEvent | None:
    """A stored result event, or None when absent or unreadable."""
    if raw is None:
        return None
    try:
        return ResultEvent.model_validate_json(raw)
    except ValidationError:
        return None


def epoch(when: datetime | None) -> str:
    """``when`` as epoch seconds for the scripts, '0' for none."""
    return repr(when.timestamp()) if when is not None else "0"
