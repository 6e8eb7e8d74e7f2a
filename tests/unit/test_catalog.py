"""The vendor catalog: every place that should know the vendors reads it (a sixth vendor
registered here is seen by all of them), no vendor list is written anywhere else, the README's
vendor table is the catalog's, and the door checks the catalog's requirements."""

from __future__ import annotations

import ast
import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from order_dispatch import catalog
from order_dispatch.catalog import Length, Maximum, Required, VendorEntry
from order_dispatch.contract import VENDOR_OPERATIONS, Job, Operation, ValidationError
from order_dispatch.settings import Settings, VendorAccount
from producers.enqueue import InvalidJob, validate_job

ROOT = Path(__file__).resolve().parents[2]

ACME = VendorEntry(
    name="acme",
    title="Acme",
    operations=frozenset({Operation.CREATE}),
    adapter="tests.unit.sixth_vendor:Acme",
    simulator="tests.unit.sixth_vendor:AcmeSimulator",
    options="tests.unit.sixth_vendor:AcmeOptions",
    credentials=("api_key",),
    docs="docs/vendors/acme.md",
    auth="`X-Acme-Key`",
    lost_create="`in_doubt`",
    requirements={Operation.CREATE: (Required("order.customer.email"),)},
)


def order(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "order_id": "A-1",
        "placed_at": "2026-01-02T03:04:05+00:00",
        "customer": {"email": "buyer@example.com"},
        "ship_to": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
        "items": [{"sku": "SKU-1", "quantity": 2, "unit_price": "1.00"}],
    }
    doc.update(changes)
    return doc


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> Iterator[VendorEntry]:
    monkeypatch.setitem(catalog.CATALOG, "acme", ACME)
    yield ACME


# A sixth vendor is one catalog entry (plus its adapter, simulator, tests and page)


def test_the_contract_and_the_door_know_a_sixth_vendor(acme: VendorEntry) -> None:
    job = Job.model_validate({"vendor": "acme", "order": order()})

    assert VENDOR_OPERATIONS["acme"] == {Operation.CREATE}
    assert "acme" in VENDOR_OPERATIONS and "acme" in catalog.names()
    assert validate_job({"vendor": "acme", "order": order()}).job_id == job.job_id
    with pytest.raises(ValidationError, match="acme does not support operation 'cancel'"):
        Job.model_validate({"vendor": "acme", "operation": "cancel", "order_id": "A-1",
                            "vendor_order_id": "x"})
    with pytest.raises(InvalidJob) as refused:
        validate_job({"vendor": "acme", "order": order(customer={})})
    assert refused.value.errors == ["order.customer.email: is required by this vendor"]


def test_the_worker_registry_knows_a_sixth_vendor(acme: VendorEntry) -> None:
    from worker.vendors import known_vendors, vendor_class

    cls = vendor_class("acme")

    assert "acme" in known_vendors()
    assert cls.__name__ == "Acme" and cls.name == "acme"
    assert cls.operations == acme.operations
    assert cls.required_credentials == acme.credentials


def test_the_sandbox_the_demo_and_preview_know_a_sixth_vendor(acme: VendorEntry) -> None:
    from order_dispatch_cli.demo import demo_accounts, worker_env
    from order_dispatch_cli.preview import preview
    from order_dispatch_sandbox.registry import all_simulators
    from order_dispatch_sandbox.runner import BackgroundSandbox
    from worker.vendors import vendor_class

    assert "acme" in {s.name for s in all_simulators()}
    sandbox = BackgroundSandbox()
    try:
        account = demo_accounts(sandbox)["acme"]["default"]
        env = worker_env("redis://127.0.0.1:1/0", "od-test", sandbox)
    finally:
        sandbox.stop()

    assert account == {
        "base_url": sandbox.vendor_url("acme"),
        "credentials": {"api_key": "sandbox-acme-key"},
        "options": {"warehouse": 7},
    }
    assert '"acme"' in env["ORDER_DISPATCH_ACCOUNTS"]
    vendor_class("acme")(VendorAccount.model_validate(account))  # the demo's account is valid
    job = Job.model_validate({"vendor": "acme", "order": order()})
    shown = preview(job, Settings())
    assert shown["placeholder_credentials"] is True
    assert shown["body"]["warehouse"] == 1 and shown["url"] == "https://acme.example/orders"


def test_a_sixth_vendor_sends_through_the_sandbox_with_the_demo_account(
    acme: VendorEntry,
) -> None:
    from order_dispatch_cli.demo import demo_accounts
    from order_dispatch_sandbox.runner import BackgroundSandbox
    from worker.outcomes import OutcomeKind
    from worker.vendors import vendor_class
    from worker.vendors.sender import Sender

    job = validate_job({"vendor": "acme", "order": order()})
    with BackgroundSandbox() as sandbox:
        account = VendorAccount.model_validate(demo_accounts(sandbox)["acme"]["default"])
        vendor = vendor_class("acme")(account)

        async def send() -> Any:
            async with httpx.AsyncClient() as client:
                sender = Sender(client, Settings())
                return await sender.submit(vendor, job, vendor.translate(job))

        outcome = asyncio.run(send())
        stored = sandbox.simulator("acme").orders()

    assert outcome.kind is OutcomeKind.SUCCESS, outcome.error
    assert outcome.vendor_order_id == "acme-1"
    assert stored == [{"reference": "A-1", "warehouse": 7, "email": "buyer@example.com",
                       "lines": [{"sku": "SKU-1", "qty": 2}]}]


# No vendor list outside the catalog

#: Where a vendor's name may be written: the catalog, each vendor's own adapter and simulator.
_OWN_MODULES = {
    "order_dispatch/catalog.py",
    *(f"worker/vendors/{v}.py" for v in catalog.names()),
    *(f"order_dispatch_sandbox/{v}.py" for v in catalog.names()),
}
_PACKAGES = (
    "order_dispatch", "worker", "producers", "order_dispatch_cli", "order_dispatch_ops",
    "order_dispatch_sandbox", "benchmarks",
)


def _vendor_lists(tree: ast.AST) -> Iterator[tuple[int, list[str]]]:
    """Each literal (a collection, or one string) that names two or more vendors."""
    names = set(catalog.names())
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            elements: list[ast.expr | None] = list(node.elts)
        elif isinstance(node, ast.Dict):
            elements = list(node.keys)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found = sorted(set(re.findall(r"[a-z]+", node.value)) & names)
            if len(found) >= 2:
                yield node.lineno, found
            continue
        else:
            continue
        found = sorted(
            {e.value for e in elements if isinstance(e, ast.Constant) and e.value in names}
        )
        if len(found) >= 2:
            yield node.lineno, found


def test_no_vendor_list_is_written_outside_the_catalog_and_the_vendors_own_modules() -> None:
    lists = []
    for package in _PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where in _OWN_MODULES:
                continue
            for line, found in _vendor_lists(ast.parse(path.read_text(), where)):
                lists.append(f"{where}:{line}: {', '.join(found)}")

    assert lists == [], "read the vendors from order_dispatch.catalog instead"


def test_the_scan_finds_a_written_vendor_list() -> None:
    source = 'ADAPTERS = {"sophio": "a", "shopatron": "b"}\nHELP = "sophio or sellercloud"\n'

    assert [line for line, _ in _vendor_lists(ast.parse(source))] == [1, 2]


# The README's vendor table is the catalog's


def vendor_table() -> str:
    """The README's table of vendors, as the catalog says."""
    rows = [
        "| vendor | operations | auth | account options | a lost `create` is… |",
        "|---|---|---|---|---|",
    ]
    for entry in sorted(catalog.CATALOG.values(), key=lambda e: e.title.lower()):
        operations = ", ".join(f"`{op.value}`" for op in Operation if op in entry.operations)
        options = "—"
        if entry.options is not None:
            options = ", ".join(f"`{name}`" for name in catalog.load(entry.options).model_fields)
        rows.append(
            f"| [{entry.title}]({entry.docs}) | {operations} | {entry.auth} | {options} "
            f"| {entry.lost_create} |"
        )
    return "\n".join(rows) + "\n"


def test_the_readme_vendor_table_is_the_catalogs() -> None:
    readme = (ROOT / "README.md").read_text()

    assert vendor_table() in readme, "the README's vendor table should read:\n" + vendor_table()


def test_the_readme_names_every_vendor_where_it_lists_them() -> None:
    readme = (ROOT / "README.md").read_text()
    door = ", ".join(f"`{name}`" for name in catalog.names())

    assert f"| vendor | one of {door} (the error lists them) |" in readme
    for heading in ("| vendor | endpoints (after `/<vendor>`) | demo credentials |",):
        table = readme[readme.index(heading):].split("\n\n")[0]
        rows = [line.split("|")[1].strip(" `") for line in table.splitlines()[2:]]
        assert sorted(rows) == catalog.names()
    for entry in catalog.CATALOG.values():
        assert (ROOT / entry.docs).is_file(), entry.docs


def test_a_sixth_vendor_s_entry_changes_the_table(acme: VendorEntry) -> None:
    assert "| [Acme](docs/vendors/acme.md) | `create` | `X-Acme-Key` | `warehouse` |" in (
        vendor_table()
    )


# The catalog's requirements as data


def test_a_shopatron_create_without_the_buyer_s_ip_is_refused_at_the_door() -> None:
    doc = {
        "vendor": "shopatron",
        "order": order(
            customer={"email": "b@example.com", "first_name": "B", "last_name": "C"},
            ship_to={"line1": "1 Main St", "city": "X", "country": "US", "postal_code": "1"},
            items=[{"sku": "S", "name": "Thing", "quantity": 1, "unit_price": "1.00"}],
            payment={"type": "CC"},
        ),
    }
    with pytest.raises(InvalidJob) as refused:
        validate_job(doc, source="line 3")

    assert refused.value.errors == [
        "order.customer.ip: is required by this vendor to create an order: the buyer's external "
        "IPv4 address, used for fraud review"
    ]
    assert str(refused.value).startswith("line 3: order 'A-1' is invalid: order.customer.ip")
    assert validate_job({**doc, "operation": "import"}).operation is Operation.IMPORT


def test_every_broken_requirement_is_named_once() -> None:
    entry = VendorEntry(
        name="acme", title="Acme", operations=frozenset({Operation.CREATE}), adapter="x:y",
        simulator="x:y", options=None, credentials=(), docs="", auth="", lost_create="",
        requirements={
            Operation.CREATE: (
                Required(("order.customer.first_name", "order.ship_to.first_name"), "needs a name"),
                Required("order.items.*.name"),
                Required("order.bill_to.postal_code", within="order.bill_to"),
                Length(("order.ship_to.phone", "order.customer.phone"), max=5),
                Length(("order.bill_to.phone", "order.customer.phone"), max=5,
                       within="order.bill_to"),
                Length("order.custom.*", min=2),
                Maximum("order.items.*.quantity", 10, "is {value}, over {max}"),
            )
        },
    )
    items = [
        {"sku": "A", "name": "a", "quantity": 1, "unit_price": "1"},
        {"sku": "B", "quantity": 11, "unit_price": "1"},
    ]
    job = Job.model_validate(
        {"vendor": "sophio", "order": order(customer={"phone": "1234567"}, items=items,
                                            custom={"k": "v"})}
    )
    with_bill_to = job.model_copy(update={"order": job.order.model_copy(  # type: ignore[union-attr]
        update={"bill_to": job.order.ship_to})})  # type: ignore[union-attr]

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(catalog.CATALOG, "sophio", entry)
        found = [str(p) for p in catalog.check(job)]
        found_with_bill_to = [str(p) for p in catalog.check(with_bill_to)]

    assert found == [
        "order.customer.first_name: needs a name",
        "order.items.1.name: is required by this vendor",
        "order.customer.phone: is 7 characters; the vendor accepts at most 5",
        "order.custom.k: is 1 characters; the vendor accepts at least 2",
        "order.items.1.quantity: is 11, over 10",
    ]
    # The billing address brings its postal code rule; the customer's phone is named once.
    assert found_with_bill_to == [
        "order.customer.first_name: needs a name",
        "order.items.1.name: is required by this vendor",
        "order.bill_to.postal_code: is required by this vendor",
        "order.customer.phone: is 7 characters; the vendor accepts at most 5",
        "order.custom.k: is 1 characters; the vendor accepts at least 2",
        "order.items.1.quantity: is 11, over 10",
    ]


def test_an_unknown_vendor_is_named_with_the_known_ones() -> None:
    with pytest.raises(catalog.UnknownVendor, match="valid vendors: sellercloud, shopatron"):
        catalog.entry("acme")


def test_the_operations_view_is_live(acme: VendorEntry) -> None:
    assert dict(catalog.OPERATIONS)["acme"] == {Operation.CREATE}
    assert len(catalog.OPERATIONS) == len(catalog.CATALOG)
