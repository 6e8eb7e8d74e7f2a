"""Quarantine encoding, the dispatch call's arguments, the persistence check, and why the
transport calls a message unreadable (pure parts; Redis is a stub where one is needed)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from order_dispatch.contract import format_validation_errors
from worker.broker import _unreadable
from worker.persistence import RedisNotPersistent, check_persistence
from worker.quarantine import decode_raw, encode_raw, envelope
from worker.tasks import DispatchCall


@pytest.mark.parametrize(
    ("raw", "encoding"),
    [(b"plain text", "utf-8"), ("caf\u00e9".encode(), "utf-8"), (b"\xff\xfe\x00", "base64")],
)
def test_raw_bytes_are_kept_exactly(raw: bytes, encoding: str) -> None:
    text, used = encode_raw(raw)

    assert used == encoding
    assert decode_raw(text, used) == raw


def test_a_kombu_message_is_kept_as_its_envelope() -> None:
    payload = {"body": "W10=", "headers": {"task": "t"}, "properties": {"delivery_tag": "1"}}

    assert json.loads(envelope(SimpleNamespace(_raw=payload, body=b"[]"))) == payload
    assert envelope(SimpleNamespace(body=b"\x00raw")) == b"\x00raw"


def test_a_dispatch_call_takes_ids_only() -> None:
    call = DispatchCall.model_validate({"job_id": "j-1", "run": 2, "attempt": 3})

    assert (call.job_id, call.run, call.attempt, call.deferred) == ("j-1", 2, 3, False)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, "job_id: Field required"),
        ({"job_id": 7}, "job_id: Input should be a valid string"),
        ({"job_id": "j", "run": "1"}, "run: Input should be a valid integer"),
        ({"job_id": "j", "attempt": 0}, "attempt: Input should be greater than or equal to 1"),
        ({"job_id": "j", "job": {"order": {}}}, "job: Extra inputs are not permitted"),
    ],
)
def test_a_broken_dispatch_call_names_the_field(kwargs: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DispatchCall.model_validate(kwargs)

    assert error in format_validation_errors(caught.value)


class _Redis:
    """A stub answering CONFIG GET appendonly (or refusing CONFIG, as managed services do)."""

    def __init__(self, appendonly: str | None) -> None:
        self.appendonly = appendonly

    def config_get(self, name: str) -> dict[str, str]:
        if self.appendonly is None:
            raise redis.ResponseError("unknown command 'CONFIG'")
        return {name: self.appendonly}


def _check(appendonly: str | None, *, allowed: bool) -> bool | None:
    return check_persistence(_Redis(appendonly), allowed=allowed)  # type: ignore[arg-type]


def test_a_persistent_redis_passes() -> None:
    assert _check("yes", allowed=False) is True


def test_a_redis_without_persistence_is_refused_naming_the_fix() -> None:
    with pytest.raises(RedisNotPersistent) as caught:
        _check("no", allowed=False)

    assert "appendonly yes" in str(caught.value)
    assert "ORDER_DISPATCH_ALLOW_NON_PERSISTENT_REDIS" in str(caught.value)


def test_a_redis_without_persistence_may_be_allowed() -> None:
    assert _check("no", allowed=True) is False


def test_a_redis_that_will_not_tell_is_served_with_a_warning() -> None:
    assert _check(None, allowed=False) is None


def _error(call: Any) -> Exception:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("no error")


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (_error(lambda: json.loads("order for Pam")), "not JSON (Expecting value: line 1"),
        (KeyError("properties"), "not a Celery message: it has no 'properties' field"),
        (TypeError("string indices must be integers"), "not a Celery message (TypeError: "),
    ],
)
def test_an_unreadable_message_says_why(exc: Exception, reason: str) -> None:
    assert _unreadable(exc).startswith(reason)
