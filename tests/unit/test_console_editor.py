"""The corrected-order editor: an order as form fields and back, errors beside their fields."""

from __future__ import annotations

from typing import Any

from order_dispatch_api.console import editor

ORDER: dict[str, Any] = {
    "order_id": "A-1",
    "ship_to": {"line1": "1725 Slough Ave", "country": "US", "line2": None},
    "items": [{"sku": "s1", "quantity": 2, "unit_price": "9.99", "gift": False}],
    "weight": 1.5,
}


def test_every_leaf_is_a_field_named_by_the_path_the_contract_uses() -> None:
    shown = {f.name: (f.kind, f.text) for f in editor.fields(ORDER)}

    assert shown == {
        "order.order_id": ("str", "A-1"),
        "order.ship_to.line1": ("str", "1725 Slough Ave"),
        "order.ship_to.country": ("str", "US"),
        "order.ship_to.line2": ("null", ""),
        "order.items.0.sku": ("str", "s1"),
        "order.items.0.quantity": ("int", "2"),
        "order.items.0.unit_price": ("str", "9.99"),
        "order.items.0.gift": ("bool", "false"),
        "order.weight": ("float", "1.5"),
    }


def test_a_form_comes_back_in_the_order_s_shape_with_its_json_types() -> None:
    form = {
        "order.ship_to.line2": "Suite 200",
        "order.items.0.quantity": "3",
        "order.items.0.gift": "true",
        "order.weight": "2",
        "order.invented": "not in the order",
    }

    fixed = editor.corrected(ORDER, form)

    assert fixed["ship_to"] == {"line1": "1725 Slough Ave", "country": "US", "line2": "Suite 200"}
    assert fixed["items"] == [{"sku": "s1", "quantity": 3, "unit_price": "9.99", "gift": True}]
    assert fixed["weight"] == 2.0 and "invented" not in fixed
    assert ORDER["items"][0]["quantity"] == 2  # the stored order is not touched


def test_a_value_that_does_not_parse_as_its_type_stays_text_for_the_contract_to_name() -> None:
    fixed = editor.corrected(ORDER, {"order.items.0.quantity": "2x", "order.ship_to.line2": ""})

    assert fixed["items"][0]["quantity"] == "2x"
    assert fixed["ship_to"]["line2"] is None


def test_errors_go_beside_their_fields_and_the_rest_above_the_form() -> None:
    names = {f.name for f in editor.fields(ORDER)}
    errors = [
        "order.ship_to.country: String should match pattern '^[A-Z]{2}$'",
        "order.items.0.quantity: Input should be a valid integer",
        "order.items: at least one item",
        "(document): too large",
    ]

    beside, rest = editor.split_errors(errors, names)

    assert beside == {
        "order.ship_to.country": ["String should match pattern '^[A-Z]{2}$'"],
        "order.items.0.quantity": ["Input should be a valid integer"],
    }
    assert rest == ["order.items: at least one item", "(document): too large"]


def test_the_order_of_a_stored_document() -> None:
    assert editor.order_of('{"vendor": "x", "order": {"order_id": "A"}}') == {"order_id": "A"}
    assert editor.order_of(None) is None
    assert editor.order_of("not json") is None
