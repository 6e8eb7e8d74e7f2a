"""Keeps customers' personal data out of result events, timelines and logs.

An order carries names, addresses, emails and phone numbers; vendors echo them back in their
answers and sometimes in their error messages. Two rules mask them (with :data:`MASK`):

- values under keys that name a personal field (``firstName``, ``street1``, ``email``,
  ``postalCode``, ...) in a JSON or XML body, whatever the values are;
- the job's own personal values (:func:`personal_values`) wherever they appear in a text.

:func:`scope` makes the second rule apply to every log line written while a job runs.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from order_dispatch.contract import Address, Job, PartialAddress

MASK = "[personal]"

#: Keys (lower case, letters and digits only) whose values are personal data.
PERSONAL_KEYS = frozenset(
    {
        "name", "fullname", "firstname", "lastname", "middlename", "givenname", "familyname",
        "surname", "contactname", "attention", "company", "companyname",
        "street", "street1", "street2", "street3", "address", "address1", "address2",
        "address3", "addressline1", "addressline2", "addressline3", "line1", "line2", "line3",
        "city", "town", "postalcode", "postcode", "zip", "zipcode",
        "phone", "phonenumber", "phoneext", "mobile", "telephone", "fax",
        "email", "emailaddress", "customeremail", "customerusername", "customerip", "ip",
        "giftmessage", "customernotes", "ordercomment",
    }
)  # fmt: skip
_NON_ALNUM = re.compile(r"[^a-z0-9]")
_XML_ELEMENT = re.compile(r"<([A-Za-z_][\w.-]*)(\s[^>]*)?>([^<]*)</\1>")
#: Values shorter than this are not masked by value (too likely to match unrelated text).
MIN_VALUE_CHARS = 3

_scoped: contextvars.ContextVar[re.Pattern[str] | None] = contextvars.ContextVar(
    "personal_values", default=None
)


def is_personal_key(key: str) -> bool:
    """True when a field named ``key`` holds personal data."""
    return _NON_ALNUM.sub("", key.lower()) in PERSONAL_KEYS


def _address_values(address: Address | PartialAddress | None) -> list[str | None]:
    if address is None:
        return []
    return [
        address.first_name, address.last_name, address.company, address.line1, address.line2,
        address.line3, address.city, address.postal_code, address.phone, address.email,
    ]  # fmt: skip


def personal_values(job: Job) -> list[str]:
    """The personal data ``job`` carries: names, addresses, emails, phones, notes, gift text."""
    values: list[str | None] = _address_values(job.address)
    order = job.order
    if order is not None:
        customer = order.customer
        values += [
            customer.email, customer.first_name, customer.last_name, customer.company,
            customer.phone, customer.ip,
        ]  # fmt: skip
        values += _address_values(order.ship_to) + _address_values(order.bill_to)
        if order.gift is not None:
            values += [order.gift.message, order.gift.sender, order.gift.recipient]
        if order.notes is not None:
            values += [order.notes.customer, order.notes.internal]
    return sorted({v for v in values if v and len(v) >= MIN_VALUE_CHARS}, key=len, reverse=True)


def _pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    alternatives = [re.escape(v) for v in values if v and len(v) >= MIN_VALUE_CHARS]
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


def _mask_tree(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (MASK if is_personal_key(str(k)) and v not in (None, "") else _mask_tree(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_mask_tree(v) for v in node]
    return node


def _mask_xml(text: str) -> str:
    def element(match: re.Match[str]) -> str:
        tag, attrs, content = match.group(1), match.group(2) or "", match.group(3)
        if not content.strip() or not is_personal_key(tag.rsplit(":", 1)[-1]):
            return match.group(0)
        return f"<{tag}{attrs}>{MASK}</{tag}>"

    return _XML_ELEMENT.sub(element, text)


def mask(text: str, values: Iterable[str] = ()) -> str:
    """``text`` (a vendor's body or message) with personal fields and ``values`` masked, and
    the values of the current :func:`scope`."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        with contextlib.suppress(ValueError):
            text = json.dumps(_mask_tree(json.loads(text)), ensure_ascii=False)
    if "<" in text:
        text = _mask_xml(text)
    for pattern in (_pattern(values), _scoped.get()):
        if pattern is not None:
            text = pattern.sub(MASK, text)
    return text


def masked_in_scope(text: str) -> str:
    """``text`` with the current :func:`scope`'s values masked (cheap when there is none)."""
    pattern = _scoped.get()
    return pattern.sub(MASK, text) if pattern is not None else text


def excerpt(body: str | None, job: Job, limit: int) -> str | None:
    """What a result event may carry of a vendor's ``body``: personal data masked, cut to
    ``limit`` characters (marked when cut); None when ``limit`` is 0."""
    if body is None or limit <= 0:
        return None
    body = mask(body, personal_values(job))
    return body if len(body) <= limit else body[:limit] + f"...[{len(body) - limit} more]"


@contextlib.contextmanager
def scope(job: Job) -> Iterator[None]:
    """While the block runs (in this context), :func:`mask` and the logs mask ``job``'s
    personal values too."""
    token = _scoped.set(_pattern(personal_values(job)))
    try:
        yield
    finally:
        _scoped.reset(token)
