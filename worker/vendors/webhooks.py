"""The webhooks "vendor": a delivery of a result event to one endpoint, signed per Standard
Webhooks. The account is the endpoint (its id, URL, secrets and rate limit, read from
:class:`order_dispatch.webhooks.EndpointBook`), the operation ``notify``, the request a POST of
the payload the job carries.

Answers: a 2xx delivered it; 410 Gone is permanent (the pipeline then disables the endpoint);
every other answer retries, 3xx included (redirects are never followed: the receiver should
register its new URL); 429 and 503 with ``Retry-After`` throttle. A delivery may be sent again
after a lost answer (consumers dedupe on ``webhook-id``), so an unknown outcome retries too.
"""

from __future__ import annotations

import time
from typing import ClassVar

from pydantic import SecretStr

from order_dispatch.contract import WEBHOOKS, ErrorKind, Job, Operation
from order_dispatch.settings import VendorAccount
from order_dispatch.webhooks import Endpoint, body_of, msg_id_of, sign
from worker.outcomes import Outcome, OutcomeKind
from worker.vendors.base import TranslationError, Vendor, VendorRequest, VendorResponse

#: Response bodies are read up to this many bytes.
BODY_LIMIT = 64 * 1024


class Webhooks(Vendor):
    """One endpoint's adapter (see the module docstring)."""

    name: ClassVar[str] = WEBHOOKS
    operations: ClassVar[frozenset[Operation]] = frozenset({Operation.NOTIFY})
    repeat_safe_operations: ClassVar[frozenset[Operation]] = frozenset({Operation.NOTIFY})

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        default_rate_per_minute: float = 0.0,
        clock_seen: bool = True,
    ) -> None:
        rate = endpoint.rate_per_minute
        account = VendorAccount(
            base_url=endpoint.url,
            credentials={
                f"secret{n}": SecretStr(s) for n, s in enumerate(endpoint.signing_secrets())
            },
            rate_limit_per_minute=default_rate_per_minute if rate is None else rate,
        )
        super().__init__(account, account_name=endpoint.id)
        self.endpoint = endpoint
        self.clock_seen = clock_seen
        """Whether the endpoint's failing clock may be running, as this process last saw it
        (read with the endpoint, set by each answer): a success clears the clock only then."""

    def secrets(self) -> list[str]:
        """The signing secrets (never in a log or an event)."""
        return [s.value for s in self.endpoint.secrets]

    def translate(self, job: Job) -> VendorRequest:
        """The POST of the job's payload, with its ``webhook-id`` (signed in :meth:`authorize`,
        just before each send)."""
        if job.operation is not Operation.NOTIFY or job.event is None:
            raise TranslationError("operation", "a webhook delivery is a 'notify' with an event")
        return VendorRequest(
            "POST",
            "",
            content=body_of(job),
            headers={"Content-Type": "application/json", "webhook-id": msg_id_of(job)},
        )

    def authorize(self, request: VendorRequest, token: str | None) -> VendorRequest:
        """Sign: ``webhook-timestamp`` now, ``webhook-signature`` with every secret that signs
        (two during a rotation)."""
        now = int(time.time())
        body = request.content or b""
        signature = sign(request.headers["webhook-id"], now, body, self.endpoint.signing_secrets())
        return request.with_headers(
            **{"webhook-timestamp": str(now), "webhook-signature": signature}
        )

    def parse_success(self, job: Job, response: VendorResponse) -> Outcome:
        """Any 2xx delivered the event."""
        return Outcome(OutcomeKind.SUCCESS, http_status=response.status)

    def error_detail(self, response: VendorResponse) -> tuple[str | None, str]:
        """Receivers have no error format of ours: the status says it."""
        if 300 <= response.status < 400:
            return None, f"HTTP {response.status}: redirects are not followed (update the URL)"
        return None, f"HTTP {response.status} {response.reason}".rstrip()

    def read(self, job: Job, response: VendorResponse) -> Outcome:
        """2xx delivered; 410 permanent; everything else retries (Retry-After honoured)."""
        outcome = super().read(job, response)
        if response.ok or response.status == 410 or outcome.kind is OutcomeKind.RETRYABLE:
            return outcome
        error = outcome.error
        return Outcome.failure(
            OutcomeKind.RETRYABLE,
            ErrorKind.VENDOR_REJECTED if response.status < 500 else ErrorKind.VENDOR_UNAVAILABLE,
            error.message if error else f"HTTP {response.status}",
            http_status=response.status,
            body=response.text,
        )
