"""One meaning for money (``order_dispatch.money``), through all five translators.

One order with discounts and taxes on an item and on the order as a whole goes to every vendor.
Where the vendor's request carries the money, the vendor's own arithmetic over the request it
would receive comes to what the order comes to (``totals.paid``); where it cannot, the order is
refused at the door (``validate_job``) and by the translator, naming the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from order_dispatch import money
from order_dispatch.contract import Job
from order_dispatch.settings import VendorAccount
from order_dispatch_sandbox.accounts import sandbox_accounts
from producers.enqueue import InvalidJob, validate_job
from worker.vendors import known_vendors, vendor_class
from worker.vendors.base import TranslationError

ITEMS = [
    # 2 x 10.00, 1.00 off the line, 1.52 tax on the line
    {"sku": "A-1", "name": "Mug", "quantity": 2, "unit_price": "10.00", "discount": "1.00",
     "tax": "1.52"},
    # 1 x 5.00, 0.40 tax
    {"sku": "B-2", "name": "Cap", "quantity": 1, "unit_price": "5.00", "tax": "0.40"},
]
#: Whole discount 3.00 (1.00 on the line, a 2.00 coupon), whole tax 2.24 (1.92 on the lines,
#: 0.32 on shipping): 25.00 - 3.00 + 2.24 + 4.00 = 28.24.
WITH_ORDER_PARTS = {"shipping": "4.00", "discount": "3.00", "tax": "2.24", "paid": "28.24"}
#: The same order without the order-level parts: 25.00 - 1.00 + 1.92 + 4.00 = 29.92.
ITEMS_ONLY = {"shipping": "4.00", "discount": "1.00", "tax": "1.92", "paid": "29.92"}


def job(vendor: str, totals: dict[str, str]) -> dict[str, Any]:
    return {
        "vendor": vendor,
        "order": {
            "order_id": f"MONEY-{vendor}",
            "placed_at": "2026-11-20T10:00:00+00:00",
            "customer": {"email": "pam@example.com", "first_name": "Pam", "last_name": "Beesly",
                         "ip": "203.0.113.7"},
            "ship_to": {"first_name": "Pam", "last_name": "Beesly", "line1": "1725 Slough Ave",
                        "city": "Scranton", "region": "PA", "postal_code": "18505",
                        "country": "US", "phone": "570-555-0100"},
            "items": [{**i, "attributes": {"link": "https://example.com/a.png"}} for i in ITEMS],
            "totals": totals,
            "payment": {"type": "CC", "amount": totals["paid"]},
        },
    }


def request_json(vendor: str, totals: dict[str, str]) -> Any:
    account = VendorAccount.model_validate(
        sandbox_accounts("http://sandbox", from_env=False)[vendor]["default"]
    )
    request = vendor_class(vendor)(account).translate(Job.model_validate(job(vendor, totals)))
    return request.json


def _find(node: Any, key: str) -> Any:
    """The first value under ``key`` anywhere in a JSON document."""
    if isinstance(node, dict):
        if key in node:
            return node[key]
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            found = _find(child, key)
            if found is not None:
                return found
    return None


def sophio_total(body: dict[str, Any]) -> Decimal:
    """ShipStation's arithmetic: every line (adjustments included) + taxAmount + shipping."""
    lines = sum(Decimal(str(i["quantity"])) * Decimal(str(i["unitPrice"])) for i in body["items"])
    return lines + Decimal(str(body["taxAmount"])) + Decimal(str(body["shippingAmount"]))


def supplystream_total(body: dict[str, Any]) -> Decimal:
    """SEKO's header totals: SubTotal - DiscountPriceTotal + TaxTotal + ShippingTotal."""
    def get(key: str) -> Decimal:
        return Decimal(str(_find(body, key)))

    return get("SubTotal") - get("DiscountPriceTotal") + get("TaxTotal") + get("ShippingTotal")


def sellercloud_total(body: dict[str, Any]) -> Decimal:
    """Per product line Qty x SitePrice - DiscountValue (a fixed amount) + LineTaxTotal, plus the
    shipping fee."""
    lines = sum(
        Decimal(str(p["Qty"])) * Decimal(str(p["SitePrice"]))
        - Decimal(str(p.get("DiscountValue", 0)))
        + Decimal(str(p.get("LineTaxTotal", 0)))
        for p in body["Products"]
    )
    return lines + Decimal(str(body["ShippingMethodDetails"]["ShippingFee"]))


TOTAL_OF = {"sophio": sophio_total, "supplystream": supplystream_total,
            "sellercloud": sellercloud_total}


@pytest.mark.parametrize("totals", [WITH_ORDER_PARTS, ITEMS_ONLY], ids=["order-parts", "items"])
def test_one_order_comes_to_the_same_total_at_every_vendor_or_is_refused_naming_the_field(
    totals: dict[str, str],
) -> None:
    paid = Decimal(totals["paid"])
    order = Job.model_validate(job("sophio", totals)).order
    assert order is not None and money.amounts(order).total == paid  # the identity holds
    assert money.paid_mismatch(order) is None

    outcomes: dict[str, Any] = {}
    for vendor in known_vendors():
        refused = money.uncarried(vendor, order)
        if refused:
            with pytest.raises(InvalidJob) as at_door:
                validate_job(job(vendor, totals))
            with pytest.raises(TranslationError) as translating:
                request_json(vendor, totals)
            assert translating.value.field == refused[0][0]
            outcomes[vendor] = sorted(e.split(":", 1)[0] for e in at_door.value.errors)
            continue
        validate_job(job(vendor, totals))
        body = request_json(vendor, totals)
        if vendor == "sourceorders":
            # It bills its own prices: no amount of ours travels, so none can be wrong.
            keys = str(body).lower()
            assert not any(w in keys for w in ("price", "total", "tax", "discount", "amount"))
            outcomes[vendor] = "no amounts"
            continue
        outcomes[vendor] = TOTAL_OF[vendor](body)
        if vendor == "sophio":
            assert Decimal(str(body["amountPaid"])) == paid

    shopatron_refused = [
        "order.items.0.discount", "order.items.0.tax", "order.items.1.tax",
        "order.totals.shipping",
    ]
    if totals is WITH_ORDER_PARTS:
        assert outcomes == {
            "sophio": paid,
            "supplystream": paid,
            "sellercloud": ["order.totals.discount", "order.totals.tax"],
            "shopatron": sorted([*shopatron_refused, "order.totals.discount", "order.totals.tax"]),
            "sourceorders": "no amounts",
        }
    else:
        assert outcomes == {
            "sophio": paid,
            "supplystream": paid,
            "sellercloud": paid,
            "shopatron": sorted(shopatron_refused),
            "sourceorders": "no amounts",
        }


def test_totals_left_at_zero_are_the_items_sum_and_a_smaller_whole_is_refused() -> None:
    """0 (the default) is "not given": the items' sums stand. A whole smaller than its items'
    sum contradicts the meaning and is refused, naming the field; nothing is changed."""
    bare = Job.model_validate(job("sophio", {"shipping": "4.00", "paid": "29.92"})).order
    assert bare is not None
    assert (money.amounts(bare).discount, money.amounts(bare).tax) == (
        Decimal("1.00"), Decimal("1.92"),
    )
    assert sophio_total(request_json("sophio", {"shipping": "4.00", "paid": "29.92"})) == (
        Decimal("29.92")
    )
    with pytest.raises(InvalidJob) as caught:
        validate_job(job("sophio", {"shipping": "4.00", "tax": "1.00", "paid": "29.92"}))
    assert caught.value.errors == [
        "order.totals.tax: is 1.00 but the items' taxes add up to 1.92; totals.tax is the "
        "order's whole tax, the items' included (0 when not given)"
    ]


def test_totals_that_do_not_add_up_to_paid_are_named_not_changed() -> None:
    order = Job.model_validate(job("sophio", {**WITH_ORDER_PARTS, "paid": "30.00"})).order
    assert order is not None

    assert money.paid_mismatch(order) == (
        "order.totals.paid: is 30.00 but the items and totals come to 28.24 (subtotal - "
        "totals.discount + totals.tax + totals.shipping); sent as given"
    )
    assert Decimal(str(request_json("sophio", {**WITH_ORDER_PARTS, "paid": "30.00"})[
        "amountPaid"])) == Decimal("30.00")


def test_the_json_schema_says_what_each_amount_holds() -> None:
    from order_dispatch.contract import NormalizedOrder

    schema = NormalizedOrder.model_json_schema()["$defs"]
    totals, item = schema["Totals"]["properties"], schema["Item"]["properties"]
    assert "whole tax: the items' tax included" in totals["tax"]["description"]
    assert "whole discount: the items' discounts included" in totals["discount"]["description"]
    assert "sum(quantity * unit_price) - discount + tax + shipping" in (
        totals["paid"]["description"]
    )
    assert "whole line" in item["discount"]["description"]
    assert "whole line" in item["tax"]["description"]
