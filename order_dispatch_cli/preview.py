"""``order-dispatch preview``: the exact request the worker would send, without sending it.

The request goes through the same translator and auth hook as in the worker. Secrets are
masked (``***``), in the URL too. With no account configured, placeholder credentials and
options stand in, and the output says so, so the mapping can be seen before credentials exist.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import simplejson
from pydantic import SecretStr

from order_dispatch import redact
from order_dispatch.contract import Job
from order_dispatch.settings import Settings, VendorAccount
from worker.vendors import vendor_class
from worker.vendors.base import Vendor, VendorRequest, encode_json

PLACEHOLDER_TOKEN = "placeholder-token"


def placeholder_account(cls: type[Vendor]) -> VendorAccount:
    """An account with made-up credentials and required options, for previews only."""
    options: dict[str, Any] = {}
    if cls.options_model is not None:
        for name, field in cls.options_model.model_fields.items():
            if field.is_required():
                # 1, not 0: vendors' ids (a company, a manufacturer) start at 1.
                options[name] = 1 if field.annotation is int else f"placeholder-{name}"
    return VendorAccount(
        base_url=f"https://{cls.name}.example",
        credentials={c: SecretStr(f"placeholder-{c}") for c in cls.required_credentials},
        options=options,
    )


def preview(job: Job, settings: Settings) -> dict[str, Any]:
    """The request for ``job`` as JSON-ready data, secrets masked.

    Raises :class:`~worker.vendors.base.ConfigurationError` for a configured account with wrong
    settings and :class:`~worker.vendors.base.TranslationError` for an order the vendor would
    refuse.
    """
    cls = vendor_class(job.vendor)
    configured = settings.account(job.vendor, job.account)
    account = configured or placeholder_account(cls)
    vendor = cls(account, account_name=job.account)
    request = vendor.translate(job)
    token = PLACEHOLDER_TOKEN if vendor.uses_tokens else None
    sent = vendor.authorize(request, token)
    redact.register([*vendor.secrets(), PLACEHOLDER_TOKEN])
    out: dict[str, Any] = {
        "vendor": job.vendor,
        "account": job.account,
        "operation": job.operation.value,
        "method": sent.method,
        "url": redact.text(_full_url(sent, account.base_url)),
        "headers": redact.value(_headers(sent)),
        "body": _body(sent),
    }
    if configured is None:
        out["placeholder_credentials"] = True
        out["note"] = (
            f"no {job.vendor!r} account {job.account!r} is configured: placeholder credentials "
            "and options stand in; the mapping is real"
        )
    if vendor.uses_tokens:
        out["token_request"] = {
            "method": vendor.token_request().method,
            "url": redact.text(vendor.token_request().url(account.base_url)),
        }
    return out


def _full_url(request: VendorRequest, base_url: str) -> str:
    url = request.url(base_url)
    return f"{url}?{urlencode(request.params)}" if request.params else url


def _headers(request: VendorRequest) -> dict[str, str]:
    headers = dict(request.headers)
    if request.json is not None and request.content is None:
        headers.setdefault("Content-Type", "application/json")
    return headers


def _body(request: VendorRequest) -> Any:
    if request.content is not None:
        return redact.text(request.content.decode("utf-8", errors="replace"))
    if request.json is None:
        return None
    # Through the worker's own encoder, read back with exact decimals for printing.
    return redact.value(json.loads(encode_json(request.json), parse_float=Decimal))


def dump(data: Any) -> str:
    """``data`` as indented JSON, numbers exactly as the vendor would receive them."""
    text: str = simplejson.dumps(data, use_decimal=True, indent=2, ensure_ascii=False)
    return text


def job_from(data: Any, vendor: str, account: str | None, operation: str | None) -> Any:
    """A job document from FILE's content: a whole job, or a bare order for ``vendor``."""
    if isinstance(data, dict) and "vendor" in data:
        return data
    doc: dict[str, Any] = {"vendor": vendor, "order": data}
    if account:
        doc["account"] = account
    if operation:
        doc["operation"] = operation
    return doc

