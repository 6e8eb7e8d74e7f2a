"""SupplyStream's adapter: auth, and what its answers say (``CallStatus`` in JSON or XML, a
refusal that means the order exists, the status lookup that reconciles a lost create)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus
from xml.etree.ElementTree import Element

from order_dispatch.contract import (
    ErrorKind,
    Job,
    Operation,
)
from worker.outcomes import Outcome, OutcomeKind
from worker.vendors.base import (
    Lookup,
    UnparsableResponse,
    VendorAdapter,
    VendorRequest,
    VendorResponse,
)
from worker.vendors.supplystream.translate import (
    SupplyStreamOptions,
    SupplyStreamTranslator,
    client_guid,
)

_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_NOT_FOUND = "does not exist"

@dataclass(frozen=True, slots=True)
class CallStatus:
    """An iHub answer read: ``CallStatus`` and the fields beside it."""

    success: bool
    code: str | None
    message: str
    guid: str | None
    status: str | None


def read_answer(response: VendorResponse, default_format: str) -> CallStatus:
    """The ``CallStatus`` of a 200 answer, JSON or XML, wrapped in ``Response`` or not."""
    media = response.headers.get("Content-Type", "").lower()
    xml = "xml" in media if ("xml" in media or "json" in media) else default_format == "xml"
    if xml:
        root = response.xml()
        call = _child(root, "CallStatus")
        if call is None:
            raise UnparsableResponse("no CallStatus in the XML answer")
        return CallStatus(
            _flag(_text(_child(call, "Success"))),
            _text(_child(call, "Code")),
            _text(_child(call, "Message")) or "",
            _text(_child(root, "GUID")),
            _text(_child(root, "Status")),
        )
    data = response.json_object()
    if isinstance(data.get("Response"), dict):
        data = data["Response"]
    call_json = data.get("CallStatus")
    if not isinstance(call_json, dict):
        raise UnparsableResponse("no CallStatus object in the answer")
    message = call_json.get("Message")
    code = call_json.get("Code")
    guid, status = data.get("GUID"), data.get("Status")
    return CallStatus(
        _flag(call_json.get("Success")),
        None if code is None else str(code),
        # An empty Message may come as {} (the v1 answers are converted from XML).
        message if isinstance(message, str) else "",
        guid if isinstance(guid, str) and guid else None,
        status if isinstance(status, str) and status else None,
    )


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise UnparsableResponse(f"CallStatus.Success is {value!r}, not true or false")


def _child(element: Element, name: str) -> Element | None:
    return next((c for c in element if c.tag.rsplit("}", 1)[-1] == name), None)


def _text(element: Element | None) -> str | None:
    if element is None or element.text is None or not element.text.strip():
        return None
    return element.text.strip()


class SupplyStream(VendorAdapter[SupplyStreamOptions]):
    """SupplyStream (SEKO iHub): ``api_key`` query auth; HTTP 200 carries failures too."""

    name = "supplystream"
    translator_class = SupplyStreamTranslator
    translator: SupplyStreamTranslator
    repeat_safe_operations: ClassVar[frozenset[Operation]] = frozenset(
        {Operation.GET_STATUS, Operation.CANCEL}
    )
    options_model = SupplyStreamOptions
    lookup_authoritative = True
    overridable_options = SupplyStreamTranslator.overridable_options
    # The translator checks each option against its field and writes JSON or XML itself.
    merges_vendor_options = False

    @property
    def format(self) -> str:
        """``json`` or ``xml``: the account's wire format."""
        return self.options.format

    def secrets(self) -> list[str]:
        """The key, and the forms it takes in a query string."""
        key = self.account.secret("api_key") or ""
        return list(dict.fromkeys([*super().secrets(), quote(key, safe=""), quote_plus(key)]))

    def authorize(self, request: VendorRequest, token: str | None) -> VendorRequest:
        """Adds the ``api_key`` query parameter."""
        api_key = self.account.secret("api_key")
        assert api_key is not None
        return request.with_params(api_key=api_key)

    def business_error(self, job: Job, response: VendorResponse) -> Outcome | None:
        """``CallStatus.Success`` false in a 200: rejected with the vendor's ``Message``."""
        answer = read_answer(response, self.format)
        if answer.success:
            return None
        message = answer.message or f"the vendor refused without a message (Code {answer.code})"
        already = job.operation is Operation.CREATE and _says_already_exists(message)
        return Outcome.failure(
            OutcomeKind.PERMANENT,
            ErrorKind.VENDOR_REJECTED,
            message,
            http_status=response.status,
            code=answer.code,
            body=response.text,
            already_exists=already,
        )

    def parse_success(self, job: Job, response: VendorResponse) -> Outcome:
        """Create: the order's ``GUID``; status: ``Status``; cancel: ``Success`` alone."""
        answer = read_answer(response, self.format)
        vendor_id = answer.guid
        if job.operation is Operation.CREATE and vendor_id is None:
            raise UnparsableResponse("a successful create answer without a GUID")
        if job.operation is Operation.GET_STATUS and answer.status is None:
            raise UnparsableResponse("a successful status answer without a Status")
        return Outcome.success(
            vendor_id or job.vendor_order_id,
            answer.status,
            http_status=response.status,
            body=response.text,
        )

    def error_detail(self, response: VendorResponse) -> tuple[str | None, str]:
        """JSON ``{"Message"}``, XML ``<Error><Message>``, or the title of IIS's HTML page."""
        if not response.text.lstrip().startswith("<"):
            return super().error_detail(response)
        try:
            message = _text(_child(response.xml(), "Message"))
        except UnparsableResponse:
            message = None
        if message is None:
            title = _HTML_TITLE.search(response.text)
            message = title.group(1).strip() if title else response.text.strip()[:500]
        return None, message

    def lookup_request(self, job: Job) -> VendorRequest | None:
        """A create's order, found by the GUID it was sent with."""
        if job.operation is not Operation.CREATE:
            return None
        return self.translator.status_request(client_guid(job))

    def parse_lookup(self, job: Job, response: VendorResponse) -> Lookup:
        """Found with its status; "Sales Order does not exist" is not found; else unknown."""
        if not response.ok:
            _, message = self.error_detail(response)
            return Lookup.unknown(f"status read answered HTTP {response.status}: {message}")
        answer = read_answer(response, self.format)
        if answer.success:
            return Lookup.found(answer.guid or client_guid(job), answer.status)
        if _NOT_FOUND in answer.message.lower():
            return Lookup.not_found()
        return Lookup.unknown(f"status read refused: {answer.message}")


def _says_already_exists(message: str) -> bool:
    # Modelled on the vendor's "Error Submitting Product Master: … - Error. Product Code already
    # exists.": the order number or the GUID is already held.
    text = message.lower()
    return "already exists" in text and ("sales order number" in text or "guid" in text)

