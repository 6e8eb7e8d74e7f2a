"""``order-dispatch preview``: the request without sending it, secrets masked, limits enforced."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from order_dispatch_cli.main import main

SAMPLES = Path(__file__).resolve().parents[2] / "order_dispatch_cli" / "samples"
SAMPLE = SAMPLES / "demo-orders.jsonl"


def order() -> dict[str, object]:
    """The first demo order, bare (its file holds jobs)."""
    data: dict[str, object] = json.loads(SAMPLE.read_text().splitlines()[0])["order"]
    return data


def test_preview_prints_the_request_with_placeholder_credentials(tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order()))

    result = CliRunner().invoke(main, ["preview", "--vendor", "sourceorders", str(path)])

    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert (shown["method"], shown["url"]) == ("POST", "https://sourceorders.example/v1/orders")
    assert shown["headers"]["X-API-KEY"] == "***"
    assert shown["placeholder_credentials"] is True
    assert shown["body"]["items"][0]["skuCode"] == "sop_0123456789"


def test_preview_masks_a_configured_key(tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order()))
    env = {
        "ORDER_DISPATCH_ACCOUNTS__SOURCEORDERS__DEFAULT__BASE_URL": "https://so.test",
        "ORDER_DISPATCH_ACCOUNTS__SOURCEORDERS__DEFAULT__CREDENTIALS__API_KEY": "real-key-123",
    }

    result = CliRunner().invoke(main, ["preview", "--vendor", "sourceorders", str(path)], env=env)

    assert result.exit_code == 0, result.output
    assert "real-key-123" not in result.output
    assert json.loads(result.output)["url"] == "https://so.test/v1/orders"


def test_preview_refuses_an_operation_the_vendor_lacks(tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order()))

    result = CliRunner().invoke(
        main, ["preview", "--vendor", "sophio", "--operation", "cancel", str(path)]
    )

    assert result.exit_code == 1
    assert "sophio does not support operation 'cancel'" in result.output


def test_preview_names_every_bad_field(tmp_path: Path) -> None:
    bad = order()
    bad["items"] = [{"sku": "x", "quantity": 0, "unit_price": "1"}]
    path = tmp_path / "order.json"
    path.write_text(json.dumps(bad))

    result = CliRunner().invoke(main, ["preview", "--vendor", "sourceorders", str(path)])

    assert result.exit_code == 1
    assert "order.items.0.quantity" in result.output
