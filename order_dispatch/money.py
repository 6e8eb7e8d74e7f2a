"""One meaning for an order's money, and what each vendor can carry of it.

The contract (:class:`order_dispatch.contract.Totals`, :class:`~order_dispatch.contract.Item`):

- ``items[].unit_price``: the price of one unit, before discounts and taxes;
- ``items[].discount``: the discount on the item's whole line (all its units), an amount;
- ``items[].tax``: the tax on the item's whole line;
- ``totals.shipping``: what the customer pays for shipping, before tax;
- ``totals.discount``: the order's **whole** discount: the items' discounts **included**, plus
  any discount on the order as a whole (a coupon);
- ``totals.tax``: the order's **whole** tax: the items' taxes **included**, plus any tax not on
  an item (on shipping, say);
- ``totals.paid``: what the customer paid in all (optional).

``totals.discount`` and ``totals.tax`` left at 0 (their default) on an order whose items carry
discounts or taxes mean "not given": the whole is then the items' sum. (A whole of 0 cannot
be smaller than its parts, so 0 never means "none" when an item has some.) A whole smaller
than its items' sum otherwise is refused, naming the field.

The identity a producer can check::

    totals.paid = sum(quantity * unit_price) - totals.discount + totals.tax + totals.shipping

with the order-level parts ``totals.discount - sum(items.discount)`` and ``totals.tax -
sum(items.tax)`` at least 0. Nothing here rounds or changes an amount.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from order_dispatch import catalog

if TYPE_CHECKING:
    from order_dispatch.contract import NormalizedOrder

ZERO = Decimal(0)


def _sum(values: Iterable[Decimal | None]) -> Decimal:
    return sum((v for v in values if v is not None), ZERO)


@dataclass(frozen=True, slots=True)
class Amounts:
    """An order's money, as the contract means it."""

    subtotal: Decimal
    """Sum of quantity times unit price over the items."""
    items_discount: Decimal
    """Sum of the items' discounts."""
    items_tax: Decimal
    """Sum of the items' taxes."""
    discount: Decimal
    """The order's whole discount (items' included)."""
    tax: Decimal
    """The order's whole tax (items' included)."""
    shipping: Decimal

    @property
    def order_discount(self) -> Decimal:
        """The discount on the order as a whole, beyond its items'."""
        return self.discount - self.items_discount

    @property
    def order_tax(self) -> Decimal:
        """The tax not on any item (on shipping, say)."""
        return self.tax - self.items_tax

    @property
    def total(self) -> Decimal:
        """What the order comes to: subtotal - discount + tax + shipping."""
        return self.subtotal - self.discount + self.tax + self.shipping


def amounts(order: NormalizedOrder) -> Amounts:
    """The order's money; a whole discount or tax left at 0 is its items' sum."""
    items_discount = _sum(i.discount for i in order.items)
    items_tax = _sum(i.tax for i in order.items)
    return Amounts(
        subtotal=sum((i.unit_price * i.quantity for i in order.items), ZERO),
        items_discount=items_discount,
        items_tax=items_tax,
        discount=order.totals.discount or items_discount,
        tax=order.totals.tax or items_tax,
        shipping=order.totals.shipping,
    )


def contradictions(order: NormalizedOrder) -> list[tuple[str, str]]:
    """``(field, reason)`` for each whole smaller than its items' sum."""
    found = []
    money = amounts(order)
    for name, plural, whole, parts in (
        ("discount", "discounts", money.discount, money.items_discount),
        ("tax", "taxes", money.tax, money.items_tax),
    ):
        if whole < parts:
            found.append(
                (
                    f"order.totals.{name}",
                    f"is {whole} but the items' {plural} add up to {parts}; totals.{name} is the "
                    f"order's whole {name}, the items' included (0 when not given)",
                )
            )
    return found


def paid_mismatch(order: NormalizedOrder) -> str | None:
    """A warning when ``totals.paid`` is given and differs from what the order comes to."""
    paid = order.totals.paid
    total = amounts(order).total
    if paid is None or paid == total:
        return None
    return (
        f"order.totals.paid: is {paid} but the items and totals come to {total} "
        "(subtotal - totals.discount + totals.tax + totals.shipping); sent as given"
    )


#: The parts of an order's money a vendor may have no field for; each vendor's catalog entry
#: (:attr:`order_dispatch.catalog.VendorEntry.uncarried_money`) names those it cannot carry. An
#: order with one of them not zero is refused (at the door and by the translator), naming the
#: field: sending it without would change what the vendor charges.
PARTS = {
    "items_discount": ("order.items.{n}.discount", "an item's discount"),
    "items_tax": ("order.items.{n}.tax", "an item's tax"),
    "order_discount": ("order.totals.discount", "a discount on the order as a whole"),
    "order_tax": ("order.totals.tax", "a tax not on an item"),
    "shipping": ("order.totals.shipping", "a shipping charge"),
}


def uncarried(vendor: str, order: NormalizedOrder) -> list[tuple[str, str]]:
    """``(field, reason)`` for each part of the order's money ``vendor`` cannot carry."""
    parts = catalog.entry(vendor).uncarried_money
    if not parts:
        return []
    money = amounts(order)
    found: list[tuple[str, str]] = []
    for part in sorted(parts, key=list(PARTS).index):
        path, what = PARTS[part]
        if part in ("items_discount", "items_tax"):
            attr = part.removeprefix("items_")
            for n, item in enumerate(order.items):
                value = getattr(item, attr)
                if value:
                    found.append((path.format(n=n), f"is {value}; {_no_field(vendor, what)}"))
        elif part == "shipping" and money.shipping:
            found.append((path, f"is {money.shipping}; {_no_field(vendor, what)}"))
        elif part in ("order_discount", "order_tax"):
            name = part.removeprefix("order_")
            beyond = money.order_discount if name == "discount" else money.order_tax
            plural = "discounts" if name == "discount" else "taxes"
            if beyond:
                found.append(
                    (path, f"holds {beyond} beyond the items' {plural}; {_no_field(vendor, what)}")
                )
    return found


def _no_field(vendor: str, what: str) -> str:
    return (
        f"{vendor} has no field for {what}, and sending the order without it would change "
        "what the vendor charges"
    )
