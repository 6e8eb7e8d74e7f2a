"""Webhooks without a network: signatures checked by the reference verifier, the payload, the
SSRF guard's address classes, the endpoint decision, and the adapter's reading of answers."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from order_dispatch.contract import ErrorKind, EventStatus, Job, Operation, ResultEvent
from order_dispatch.egress import EndpointRefused, check_url, refusal
from order_dispatch.webhooks import (
    Endpoint,
    Secret,
    body_of,
    delivery_job,
    message_id,
    new_secret,
    payload,
    sign,
)
from producers.enqueue import InvalidJob, validate_job
from worker import policy
from worker.outcomes import Outcome, OutcomeKind
from worker.vendors.base import VendorResponse
from worker.vendors.webhooks import Webhooks


def _event(status: EventStatus = EventStatus.ACCEPTED) -> ResultEvent:
    return ResultEvent(
        event_id="sophio:default:create:abc:1.deadbeef:1:" + status.value,
        job_id="sophio:default:create:abc",
        order_id="A-1",
        vendor="sophio",
        account="default",
        operation=Operation.CREATE,
        status=status,
        terminal=status.terminal,
        attempt=1,
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def _endpoint(*secrets: Secret, **fields: Any) -> Endpoint:
    return Endpoint(
        id="ep_0123456789abcdef",
        url="https://hooks.example.com/in",
        created_at=datetime.now(UTC),
        secrets=list(secrets) or [Secret(value=new_secret())],
        **fields,
    )


def _headers(vendor: Webhooks, job: Job) -> tuple[bytes, dict[str, str]]:
    request = vendor.authorize(vendor.translate(job), None)
    assert request.content is not None
    return request.content, request.headers


def test_a_delivery_verifies_with_the_standardwebhooks_library() -> None:
    endpoint = _endpoint()
    vendor = Webhooks(endpoint)
    job = delivery_job(endpoint.id, _event())

    body, headers = _headers(vendor, job)
    data = Webhook(endpoint.secrets[0].value).verify(body, headers)

    assert data["type"] == "order.accepted"
    assert data["data"]["event_id"] == _event().event_id
    assert headers["webhook-id"] == message_id(_event().event_id)
    assert headers["webhook-signature"].startswith("v1,")


def test_a_wrong_secret_or_a_changed_body_fails_verification() -> None:
    endpoint = _endpoint()
    body, headers = _headers(Webhooks(endpoint), delivery_job(endpoint.id, _event()))

    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint.secrets[0].value).verify(body.replace(b"A-1", b"A-2"), headers)


def test_during_a_rotation_both_secrets_sign_and_an_expired_one_does_not() -> None:
    new, old, gone = new_secret(), new_secret(), new_secret()
    now = datetime.now(UTC).timestamp()
    endpoint = _endpoint(
        Secret(value=new),
        Secret(value=old, expires_at=now + 3600),
        Secret(value=gone, expires_at=now - 1),
    )
    body, headers = _headers(Webhooks(endpoint), delivery_job(endpoint.id, _event()))

    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(body, headers)
    Webhook(old).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(gone).verify(body, headers)


def test_the_id_is_stable_has_no_full_stop_and_the_body_is_what_was_signed() -> None:
    job = delivery_job("ep_x", _event())
    again = delivery_job("ep_x", _event())

    assert job.job_id == again.job_id
    assert "." not in message_id(_event().event_id)
    secret = new_secret()
    signed = sign("msg_1", 1_700_000_000, body_of(job), [secret])
    assert signed == sign("msg_1", 1_700_000_000, body_of(again), [secret])
    assert payload(_event())["data"]["status"] == "accepted"


def test_producers_cannot_enqueue_a_webhook_delivery() -> None:
    job = delivery_job("ep_x", _event()).model_dump(mode="json")

    with pytest.raises(InvalidJob, match="webhooks"):
        validate_job(job)


def test_notify_is_only_for_webhooks_and_needs_an_event() -> None:
    with pytest.raises(ValueError, match="notify"):
        Job.model_validate({"vendor": "sophio", "operation": "notify", "order_id": "A-1"})
    with pytest.raises(ValueError, match="event"):
        Job.model_validate({"vendor": "webhooks", "operation": "notify", "order_id": "A-1"})


def test_an_endpoint_subscribes_by_status_and_vendor_and_never_to_its_own_deliveries() -> None:
    endpoint = _endpoint(events=["rejected"], vendor="sophio")
    delivery = _event().model_copy(update={"vendor": "webhooks", "status": EventStatus.REJECTED})

    assert endpoint.wants(_event(EventStatus.REJECTED))
    assert not endpoint.wants(_event(EventStatus.ACCEPTED))
    assert not endpoint.wants(_event(EventStatus.REJECTED).model_copy(update={"vendor": "x"}))
    assert not _endpoint().wants(delivery)
    assert not _endpoint(enabled=False).wants(_event())


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd12::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared (CGNAT)"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback (inside an IPv6 address)"),
        ("2002:7f00:1::", "loopback (inside an IPv6 address)"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata (inside an IPv6 address)"),
    ],
)
def test_each_refused_address_class_is_refused(address: str, why: str) -> None:
    assert refusal(address) == why
    with pytest.raises(EndpointRefused, match=why.split(" (")[0]):
        check_url(
            f"https://[{address}]/" if ":" in address else f"https://{address}/",
            allow_private=False,
        )


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(address) is None


def test_a_name_resolving_to_loopback_is_refused_unless_private_is_allowed() -> None:
    # "localhost" resolves through the system's resolver (the hosts file) to 127.0.0.1.
    with pytest.raises(
        EndpointRefused, match=r"localhost resolves to 127\.0\.0\.1, which is loopback"
    ):
        check_url("https://localhost:9/hook", allow_private=False)
    assert check_url("http://localhost:9/hook", allow_private=True).host == "localhost"


def test_a_name_whose_dns_answer_is_loopback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolver(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "rebind.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(EndpointRefused, match=r"rebind\.example resolves to 127\.0\.0\.1"):
        check_url("https://rebind.example/hook", allow_private=False)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://93.184.215.14/", "must be https"),
        ("ftp://93.184.215.14/", "must be https"),
        ("https://user:pw@93.184.215.14/", "user name or password"),
        ("https:///nohost", "no host"),
    ],
)
def test_urls_refused_for_their_shape(url: str, why: str) -> None:
    with pytest.raises(EndpointRefused, match=why):
        check_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (200, OutcomeKind.SUCCESS),
        (204, OutcomeKind.SUCCESS),
        (410, OutcomeKind.PERMANENT),
        (400, OutcomeKind.RETRYABLE),
        (401, OutcomeKind.RETRYABLE),
        (404, OutcomeKind.RETRYABLE),
        (301, OutcomeKind.RETRYABLE),
        (429, OutcomeKind.RETRYABLE),
        (500, OutcomeKind.RETRYABLE),
        (503, OutcomeKind.RETRYABLE),
    ],
)
def test_answers(status: int, kind: OutcomeKind) -> None:
    endpoint = _endpoint()
    job = delivery_job(endpoint.id, _event())

    outcome = Webhooks(endpoint).read(job, VendorResponse.make(status, "no"))

    assert outcome.kind is kind


def test_retry_after_is_honoured() -> None:
    endpoint = _endpoint()
    response = VendorResponse.make(429, "", {"Retry-After": "7"})

    outcome = Webhooks(endpoint).read(delivery_job(endpoint.id, _event()), response)

    assert outcome.retry_after_s == 7


def test_410_or_five_days_failing_disable_the_endpoint() -> None:
    gone = Outcome.failure(OutcomeKind.PERMANENT, ErrorKind.VENDOR_REJECTED, "x", http_status=410)
    down = Outcome.failure(
        OutcomeKind.RETRYABLE, ErrorKind.VENDOR_UNAVAILABLE, "x", http_status=503
    )
    ok = Outcome(OutcomeKind.SUCCESS, http_status=200)
    day = 86_400.0

    assert policy.endpoint_disable(gone, 0.0, 5 * day) == "the receiver answered 410 Gone"
    assert policy.endpoint_disable(down, 4.9 * day, 5 * day) is None
    assert policy.endpoint_disable(down, 5 * day, 5 * day) is not None
    assert policy.endpoint_disable(ok, 9 * day, 5 * day) is None
    verdict = policy.endpoint_disabled(
        policy.Verdict(policy.Decision(EventStatus.REJECTED), gone), "ep_1", "gone"
    )
    assert verdict.decision.status is EventStatus.DEAD_LETTERED
    assert verdict.outcome.error is not None and verdict.outcome.error.code == "endpoint_disabled"


README = Path(__file__).resolve().parents[2] / "README.md"


def _node_snippet() -> str:
    section = README.read_text().split("## Webhooks", 1)[1].split("\n## ", 1)[0]
    return section.split("```js\n", 1)[1].split("```", 1)[0]


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_readme_s_node_snippet_verifies_a_delivery(tmp_path: Path) -> None:
    """The Node verification snippet, exactly as the README prints it, against real deliveries:
    accepted with either secret during a rotation, refused with a changed body or a wrong
    secret."""
    (tmp_path / "verify.mjs").write_text(_node_snippet())
    (tmp_path / "check.mjs").write_text(
        'import { verify } from "./verify.mjs";\n'
        "const c = JSON.parse(process.argv[2]);\n"
        'console.log(JSON.stringify(verify(c.secret, c.headers, Buffer.from(c.body, "base64"))));\n'
    )
    new, old = new_secret(), new_secret()
    now = datetime.now(UTC).timestamp()
    endpoint = _endpoint(Secret(value=new), Secret(value=old, expires_at=now + 3600))
    body, headers = _headers(Webhooks(endpoint), delivery_job(endpoint.id, _event()))

    def node(secret: str, raw: bytes) -> bool:
        case = {"secret": secret, "headers": headers, "body": base64.b64encode(raw).decode()}
        out = subprocess.run(
            ["node", str(tmp_path / "check.mjs"), json.dumps(case)],
            capture_output=True,
            text=True,
            check=True,
        )
        return bool(json.loads(out.stdout))

    assert node(new, body) is True
    assert node(old, body) is True
    assert node(new, body.replace(b"A-1", b"A-2")) is False
    assert node(new_secret(), body) is False
