"""The door: bounded free-form maps and jobs, files read record by record, vendor_options that
cannot replace what a translator sets, and infrastructure failures as one line."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from order_dispatch.contract import (
    MAP_MAX_ENTRIES,
    Job,
    ValidationError,
    format_validation_errors,
)
from order_dispatch.settings import Settings, VendorAccount
from order_dispatch_cli.errors import describe, masked_url, setting_name
from producers.enqueue import InvalidJob, validate_job
from producers.files import read_records
from worker.vendors.base import TranslationError
from worker.vendors.sourceorders import SourceOrders
from worker.vendors.supplystream import SupplyStream


def order(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "order_id": "D-1",
        "placed_at": "2026-01-02T03:04:05+00:00",
        "ship_to": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
        "items": [{"sku": "SKU-1", "quantity": 1, "unit_price": "1.00"}],
    }
    doc.update(changes)
    return doc


def errors_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Job.model_validate(data)
    return format_validation_errors(caught.value)


# Free-form maps


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"custom": {"note": "x" * 1001}}, "order.custom.note: is 1001 characters; at most 1000"),
        ({"custom": {"k" * 101: "v"}}, "key 'kkkkkkkkkkkkkkkkkkkk'... is 101 characters"),
        ({"custom": {str(n): "v" for n in range(51)}}, "order.custom: has 51 entries; at most 50"),
        (
            {"vendor_options": {"a": {"b": ["x" * 5_000_000]}}},
            "order.vendor_options.a.b.0: is 5000000 characters; at most 1000",
        ),
        (
            {"vendor_options": {"a": {"b": {"c": {"d": {"e": 1}}}}}},
            "order.vendor_options.a.b.c.d.e: nests deeper than 4 levels",
        ),
        (
            {"vendor_options": {"a": [[1] * 50] * 5}},
            "order.vendor_options: holds more than 200 values in all",
        ),
        (
            {"items": [{"sku": "S", "quantity": 1, "unit_price": 1, "options": {"": "x"}}]},
            "order.items.0.options: a key must not be empty",
        ),
    ],
)
def test_free_form_maps_are_bounded_and_the_error_names_the_field(
    changes: dict[str, Any], error: str
) -> None:
    found = errors_of({"vendor": "sourceorders", "order": order(**changes)})

    assert any(error in line for line in found), found


def test_maps_at_their_bounds_are_accepted() -> None:
    custom = {f"{n:0>100}": "v" * 1000 for n in range(MAP_MAX_ENTRIES)}
    options = {"a": {"b": {"c": "x" * 1000}}, "list": list(range(50))}

    job = Job.model_validate(
        {"vendor": "sourceorders", "order": order(custom=custom, vendor_options=options)}
    )

    assert job.order is not None and len(job.order.custom) == MAP_MAX_ENTRIES


def test_a_job_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    doc = {"vendor": "sourceorders", "order": order(notes={"internal": "n" * 3000})}

    with pytest.raises(InvalidJob) as caught:
        validate_job(doc, source="f.jsonl:3", max_bytes=2048)

    assert caught.value.errors[0].startswith("(document): is ")
    assert "bytes as JSON; at most 2,048 (setting ORDER_DISPATCH_MAX_JOB_BYTES)" in str(
        caught.value
    )
    assert str(caught.value).startswith("f.jsonl:3: order 'D-1' is invalid: (document)")
    assert validate_job(doc, max_bytes=8192).ref == "D-1"


def test_the_size_limit_is_a_setting_of_256_kb_by_default() -> None:
    assert Settings().max_job_bytes == 262_144


# Files


def records(text: str) -> list[tuple[int, Any, str | None]]:
    return [(r.line, r.data, r.error) for r in read_records(io.StringIO(text), "f")]


def test_json_lines_are_read_one_record_a_line_with_blank_and_comment_lines_skipped() -> None:
    text = '# export\n{"a": 1}\n\n{"b": 2}\n{oops\n'

    assert records(text) == [
        (2, {"a": 1}, None),
        (4, {"b": 2}, None),
        (5, None, "not valid JSON: Expecting property name enclosed in double quotes (column 2)"),
    ]


def test_a_pretty_printed_object_is_one_record() -> None:
    assert records('\n{\n  "a": 1,\n  "b": [1, 2]\n}\n') == [(2, {"a": 1, "b": [1, 2]}, None)]


def test_a_broken_pretty_printed_object_names_the_line_of_the_error() -> None:
    [(line, data, error)] = records('{\n  "a": 1,\n  "b": \n}\n')

    assert (line, data) == (4, None)
    assert error is not None and error.startswith("not valid JSON: Expecting value")


ARRAY = "is a JSON array; write one JSON object a line (JSON Lines), or one object in a .json file"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"a": 1}, {"a": 2}]\n{"b": 1}\n', [(1, None, ARRAY), (2, {"b": 1}, None)]),
        ('{"b": 1}\n[1]\n', [(1, {"b": 1}, None), (2, None, ARRAY)]),
        ('[\n  {"a": 1}\n]\n', [(1, None, ARRAY)]),
        ('"text"\n', [(1, None, "is a JSON string, not an object")]),
        ("", [(0, None, "holds no records (the file is empty)")]),
        ("\n# nothing\n\n", [(0, None, "holds no records (only blank lines and comments)")]),
    ],
)
def test_arrays_anywhere_and_files_without_records_are_errors(
    text: str, expected: list[tuple[int, Any, str | None]]
) -> None:
    assert records(text) == expected


def test_a_file_error_names_the_file_alone() -> None:
    [record] = read_records(io.StringIO(""), "orders.jsonl")

    assert record.where == "orders.jsonl"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(json_values | st.text(max_size=30), max_size=8))
def test_every_line_of_any_file_is_a_record_or_an_error_never_lost(lines: list[Any]) -> None:
    text = "\n".join(v if isinstance(v, str) else json.dumps(v) for v in lines) + "\n"

    found = list(read_records(io.StringIO(text), "f"))

    assert found, "a file always yields at least one record or error"
    for record in found:
        assert (record.error is None) == isinstance(record.data, dict)
    content = [
        n
        for n, line in enumerate(text.split("\n"), start=1)
        if line.strip() and not line.strip().startswith("#")
    ]
    if found[0].line == 0:
        assert not content
    elif len(found) < len(content):
        # Only a pretty-printed document joins lines, and then it is one record.
        assert len(found) == 1


# Jobs at the door


job_documents = st.fixed_dictionaries(
    {"vendor": st.sampled_from(["sourceorders", "sourceorder", "sophio", "nobody"])},
    optional={
        "operation": st.sampled_from(["create", "cancel", "import", "explode"]),
        "account": st.text(max_size=70),
        "order": st.fixed_dictionaries(
            {
                "order_id": st.text(max_size=60),
                "placed_at": st.just("2026-01-02T03:04:05+00:00"),
                "ship_to": st.just({"line1": "1 Main St", "city": "X", "country": "US"}),
                "items": st.just([{"sku": "S", "quantity": 1, "unit_price": "1"}]),
            },
            optional={
                "custom": st.dictionaries(st.text(max_size=120), st.text(max_size=1200)),
                "vendor_options": st.dictionaries(st.text(max_size=120), json_values),
            },
        ),
        "vendor_order_id": st.text(max_size=120),
        "priority": st.integers(-5, 20),
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(job_documents)
def test_any_job_is_either_valid_or_refused_with_field_paths(doc: dict[str, Any]) -> None:
    try:
        job = validate_job(doc, max_bytes=4096)
    except InvalidJob as exc:
        assert exc.errors
        for line in exc.errors:
            path, sep, message = line.partition(": ")
            assert sep and message, line
            assert path == "(document)" or path.split(".")[0] in {*doc, "order_id", "job_id"}, line
        return
    assert job.vendor in {"sourceorders", "sophio"}
    assert len(json.dumps(doc)) <= 4096


def test_an_unknown_vendor_is_refused_with_the_valid_names() -> None:
    found = errors_of({"vendor": "sourceorder", "order": order()})

    assert found == [
        "vendor: unknown vendor 'sourceorder'; valid vendors: sellercloud, shopatron, sophio, "
        "sourceorders, supplystream"
    ]


# vendor_options against what the translator sets


def so_job(**options: Any) -> Job:
    return Job.model_validate({"vendor": "sourceorders", "order": order(vendor_options=options)})


SO_ACCOUNT = VendorAccount(base_url="https://so.example", credentials={"api_key": "k-12345"})


def test_vendor_options_add_fields_the_order_has_no_place_for() -> None:
    request = SourceOrders(SO_ACCOUNT).translate(so_job(giftWrap=True))

    assert request.json["giftWrap"] is True


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"items": []}, "order.vendor_options.items"),
        ({"shippingAddress": {"city": "Elsewhere"}}, "order.vendor_options.shippingAddress.city"),
    ],
)
def test_vendor_options_that_replace_a_translated_field_are_refused(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(TranslationError) as caught:
        SourceOrders(SO_ACCOUNT).translate(so_job(**options))

    assert caught.value.field == field
    assert "would replace a field the translator sets from the order" in str(caught.value)


def test_the_same_value_is_not_a_replacement() -> None:
    request = SourceOrders(SO_ACCOUNT).translate(so_job(shippingAddress={"city": "Springfield"}))

    assert request.json["shippingAddress"]["city"] == "Springfield"


def test_a_vendor_module_may_allow_a_field_to_be_replaced() -> None:
    assert "SalesOrderHeader.DCCode" in SupplyStream.overridable_options
    assert SourceOrders.overridable_options == frozenset()


# Infrastructure failures


def test_unreachable_redis_is_one_line_naming_the_setting() -> None:
    exc = redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    assert describe(exc) == (
        "cannot reach Redis (Error 111 connecting to 127.0.0.1:1. Connection refused); check "
        "that it runs, or set ORDER_DISPATCH_REDIS_URL (or REDIS_URL, or --redis-url)"
    )


def test_bad_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_DISPATCH_HTTP__CONNECT_TIMEOUT_S", "-1")
    with pytest.raises(ValidationError) as caught:
        Settings()

    assert describe(caught.value) == (
        "bad settings: ORDER_DISPATCH_HTTP__CONNECT_TIMEOUT_S: Input should be greater than 0"
    )


def test_other_errors_are_not_infrastructure() -> None:
    assert describe(KeyError("x")) is None


def test_setting_names_and_masked_urls() -> None:
    assert setting_name(("accounts", "sophio", "default", "base_url")) == (
        "ORDER_DISPATCH_ACCOUNTS__SOPHIO__DEFAULT__BASE_URL"
    )
    assert masked_url("redis://:hunter22@db:6379/0") == "redis://:***@db:6379/0"
    assert masked_url("redis://db:6379/0") == "redis://db:6379/0"
