"""The producer's hand-made Celery message matches what Celery itself would send."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from celery import Celery
from kombu.transport import memory

from order_dispatch.keys import DISPATCH_TASK
from producers.message import dispatch_kwargs, queue_key, task_message


def celery_message(task_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """What Celery's own send_task stores in Redis, captured from a real publish."""
    app = Celery(set_as_current=False)
    app.conf.task_serializer = "json"
    captured: dict[str, Any] = {}
    with app.connection_for_write("memory://") as conn:
        app.send_task(DISPATCH_TASK, kwargs=kwargs, task_id=task_id, queue="od.x", connection=conn)
        channel = conn.default_channel
        assert isinstance(channel, memory.Channel)
        raw = channel._get("od.x")  # kombu's in-memory transport keeps the same envelope
        captured.update(raw)
    return captured


def test_our_envelope_has_celerys_shape() -> None:
    kwargs = dispatch_kwargs("j-1", run=1, attempt=1)
    ours = json.loads(task_message("tid-1", kwargs, queue="od.x"))
    theirs = celery_message("tid-1", kwargs)

    assert set(ours) == set(theirs)
    assert set(ours["headers"]) == set(theirs["headers"])
    for key in ("lang", "task", "id", "root_id", "retries", "eta", "expires", "timelimit"):
        assert ours["headers"][key] == theirs["headers"][key], key
    assert ours["properties"]["delivery_info"]["routing_key"] == "od.x"
    assert ours["properties"]["body_encoding"] == theirs["properties"]["body_encoding"]
    assert json.loads(base64.b64decode(ours["body"])) == json.loads(
        base64.b64decode(theirs["body"])
    )


@pytest.mark.parametrize(
    ("priority", "key"),
    [
        (0, "q"),
        (2, "q"),
        (3, "q\x06\x163"),
        (5, "q\x06\x163"),
        (6, "q\x06\x166"),
        (9, "q\x06\x169"),
    ],
)
def test_priorities_map_to_kombus_lists(priority: int, key: str) -> None:
    assert queue_key("q", priority) == key


def test_flower_and_inspect_see_ids_and_a_vendor_name_never_the_order() -> None:
    job = {
        "job_id": "sourceorders:default:create:0123",
        "vendor": "sourceorders",
        "operation": "create",
        "order_id": "A-1001",
        "order": {"order_id": "A-1001", "customer": {"email": "pam@example.com"}},
    }
    kwargs = dispatch_kwargs(job["job_id"], run=1, attempt=1)  # type: ignore[arg-type]

    message = json.loads(task_message("tid-1", kwargs, queue="od.sourceorders", display=job))
    headers = message["headers"]

    assert headers["task"] == DISPATCH_TASK
    assert headers["shadow"] == "dispatch:sourceorders:create"
    assert headers["kwargsrepr"] == (
        "{'job_id': 'sourceorders:default:create:0123', 'vendor': 'sourceorders', "
        "'order_id': 'A-1001'}"
    )
    assert "pam@example.com" not in json.dumps(message)


def test_the_job_reads_back_from_a_message_and_anything_else_is_none() -> None:
    from producers.message import message_job

    job = {"job_id": "j-1", "vendor": "x", "enqueued_at": "2026-11-20T10:00:00+00:00"}
    ids = dispatch_kwargs("j-1", run=2, attempt=3)

    assert message_job(task_message("tid-0", ids, queue="od.x")) == ids
    assert message_job(task_message("tid-1", {"job": job}, queue="od.x")) == job
    assert message_job(json.dumps(celery_message("tid-2", {"job": job}))) == job
    for junk in (b"", b"not json", b"[]", b'{"body": "!!"}', json.dumps({"body": "W10="})):
        assert message_job(junk) is None
