"""The contract: strict validation with field paths, Decimal money, zone-aware dates."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from order_dispatch.contract import (
    EventStatus,
    Job,
    NormalizedOrder,
    ResultEvent,
    default_job_id,
    format_validation_errors,
)


def order(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "order_id": "A-1",
        "placed_at": "2026-11-20T10:00:00-05:00",
        "ship_to": {"line1": "1 Main St", "city": "Hastings", "country": "US"},
        "items": [{"sku": "sop_1", "quantity": 1, "unit_price": "7.46"}],
    }
    base.update(changes)
    return base


def errors_of(data: dict[str, Any], model: type[BaseModel] = NormalizedOrder) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return format_validation_errors(caught.value)


def test_a_minimal_order_gets_its_defaults() -> None:
    parsed = NormalizedOrder.model_validate(order())

    assert parsed.currency == "USD"
    assert parsed.status == "awaiting_shipment"
    assert parsed.items[0].unit_price == Decimal("7.46")


def test_money_is_decimal_in_and_a_fixed_point_string_out() -> None:
    parsed = NormalizedOrder.model_validate(
        order(
            items=[
                {"sku": "x", "quantity": 2, "unit_price": 0.1},
                {"sku": "y", "quantity": 1, "unit_price": "1E+2"},
            ]
        )
    )

    dumped = json.loads(parsed.model_dump_json())

    assert parsed.items[0].unit_price == Decimal("0.1")
    assert [i["unit_price"] for i in dumped["items"]] == ["0.1", "100"]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"placed_at": "2026-11-20T10:00:00"}, "placed_at: Input should have timezone info"),
        ({"currency": "usd"}, "currency"),
        ({"ship_to": {"line1": "x", "city": "y", "country": "USA"}}, "ship_to.country"),
        ({"items": []}, "items: List should have at least 1 item"),
        ({"items": [{"sku": "x", "quantity": 0, "unit_price": "1"}]}, "items.0.quantity"),
        ({"items": [{"sku": "x", "quantity": 1, "unit_price": "-1"}]}, "items.0.unit_price"),
        ({"items": [{"sku": "x", "quantity": 1, "unit_price": "NaN"}]}, "items.0.unit_price"),
        ({"items": [{"sku": "x", "quantity": 1.5, "unit_price": "1"}]}, "items.0.quantity"),
        ({"order_id": "x" * 51}, "order_id"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"status": "lost"}, "status"),
    ],
)
def test_each_bad_field_is_named_by_its_path(change: dict[str, Any], path: str) -> None:
    assert any(e.startswith(path) for e in errors_of(order(**change))), errors_of(order(**change))


def test_every_bad_field_is_reported_at_once() -> None:
    errors = errors_of(order(currency="usd", placed_at="yesterday", items=[]))

    assert {e.split(":")[0] for e in errors} == {"currency", "placed_at", "items"}


def test_job_id_is_stable_per_vendor_account_operation_and_order() -> None:
    a = Job.model_validate({"vendor": "sourceorders", "order": order()})
    b = Job.model_validate({"vendor": "sourceorders", "order": order(notes={"customer": "hi"})})
    c = Job.model_validate({"vendor": "sophio", "order": order()})

    assert a.job_id == b.job_id == default_job_id("sourceorders", "default", "create", "A-1")
    assert a.job_id != c.job_id
    assert a.order_id == "A-1"


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"vendor": "sourceorders"}, "needs 'order'"),
        (
            {"vendor": "sourceorders", "operation": "get_status", "order_id": "A"},
            "needs 'vendor_order_id'",
        ),
        (
            {
                "vendor": "sourceorders",
                "operation": "update_address",
                "order_id": "A",
                "vendor_order_id": "soo_1",
            },
            "needs 'address'",
        ),
        (
            {
                "vendor": "sourceorders",
                "operation": "update_address",
                "order_id": "A",
                "vendor_order_id": "soo_1",
                "address": {},
            },
            "at least one field",
        ),
        ({"vendor": "Source Orders", "order": order()}, "vendor"),
        ({"vendor": "sourceorders", "order_id": "B", "order": order()}, "differs"),
    ],
)
def test_a_job_says_what_its_operation_lacks(job: dict[str, Any], message: str) -> None:
    assert any(message in e for e in errors_of(job, Job))


def test_event_terminal_flag_must_match_its_status() -> None:
    base = {
        "event_id": "e",
        "job_id": "j",
        "order_id": "o",
        "vendor": "v",
        "account": "a",
        "operation": "create",
        "attempt": 1,
        "occurred_at": "2026-11-20T10:00:00Z",
    }

    ResultEvent.model_validate({**base, "status": "accepted", "terminal": True})
    assert any(
        "contradicts" in e
        for e in errors_of({**base, "status": "retry_scheduled", "terminal": True}, ResultEvent)
    )
    assert {s for s in EventStatus if s.terminal} == {
        "accepted",
        "rejected",
        "dead_lettered",
        "in_doubt",
    }


@given(st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False))
def test_money_survives_a_json_round_trip(amount: Decimal) -> None:
    parsed = NormalizedOrder.model_validate(
        order(items=[{"sku": "x", "quantity": 1, "unit_price": str(amount)}])
    )

    again = NormalizedOrder.model_validate_json(parsed.model_dump_json())

    assert again.items[0].unit_price == amount


@pytest.mark.parametrize("document", ["order", "job", "event"])
def test_schema_command_prints_json_schema(document: str) -> None:
    from click.testing import CliRunner

    from order_dispatch_cli.main import main

    result = CliRunner().invoke(main, ["schema", document])

    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema["type"] == "object"
    assert {"order": "order_id", "job": "vendor", "event": "event_id"}[document] in (
        schema["properties"]
    )
