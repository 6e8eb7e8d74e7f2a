"""The corrected-order editor: a stored order as one form field per value, and back.

Each leaf of the order (a string, number, true/false or null) becomes a field named by its path
(``order.ship_to.postal_code``, ``order.items.0.quantity``), the path the contract's errors name,
so an error is shown beside its field. The form is read back against the stored order's own
shape: a field the form does not have cannot be added, and a value keeps its JSON type when it
still parses as one (a number typed as ``2x`` stays text, and the contract says why).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Field:
    """One value of the order: its path, its JSON type, and the text the form shows."""

    name: str
    path: Path
    kind: str
    """``str``, ``int``, ``float``, ``bool`` or ``null``."""
    text: str

    @property
    def depth(self) -> int:
        """How deep the value sits (for indenting labels)."""
        return len(self.path) - 1


def field_name(path: Path) -> str:
    """The form name (and error path) of ``path`` under ``order``."""
    return ".".join(["order", *(str(p) for p in path)])


def fields(order: Any, path: Path = ()) -> list[Field]:
    """Every leaf of ``order``, in document order."""
    if isinstance(order, Mapping):
        return [f for k, v in order.items() for f in fields(v, (*path, str(k)))]
    if isinstance(order, list):
        return [f for i, v in enumerate(order) for f in fields(v, (*path, i))]
    if order is None:
        return [Field(field_name(path), path, "null", "")]
    if isinstance(order, bool):
        return [Field(field_name(path), path, "bool", "true" if order else "false")]
    if isinstance(order, int):
        return [Field(field_name(path), path, "int", str(order))]
    if isinstance(order, float):
        return [Field(field_name(path), path, "float", repr(order))]
    return [Field(field_name(path), path, "str", str(order))]


def _value(kind: str, text: str) -> Any:
    if kind == "int":
        try:
            return int(text.strip())
        except ValueError:
            return text
    if kind == "float":
        try:
            return float(text.strip())
        except ValueError:
            return text
    if kind == "bool":
        lowered = text.strip().lower()
        return {"true": True, "false": False}.get(lowered, text)
    if kind == "null":
        return None if text == "" else text
    return text


def corrected(order: Any, form: Mapping[str, str]) -> Any:
    """``order`` with each field's value taken from ``form`` (absent fields keep theirs)."""
    result = copy.deepcopy(order)
    for f in fields(order):
        if f.name not in form:
            continue
        node = result
        for step in f.path[:-1]:
            node = node[step]
        node[f.path[-1]] = _value(f.kind, form[f.name])
    return result


def split_errors(errors: list[str], names: set[str]) -> tuple[dict[str, list[str]], list[str]]:
    """The contract's ``path: message`` lines, by field name where a field has that path; the
    rest (whole-order errors, a missing field) apart."""
    by_field: dict[str, list[str]] = {}
    rest: list[str] = []
    for line in errors:
        path, sep, message = line.partition(": ")
        if sep and path in names:
            by_field.setdefault(path, []).append(message)
        else:
            rest.append(line)
    return by_field, rest


def order_of(document: str | None) -> Any:
    """The ``order`` of a stored job document, or None."""
    try:
        data = json.loads(document) if document else None
    except ValueError:
        return None
    return data.get("order") if isinstance(data, dict) else None
