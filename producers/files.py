"""Reading jobs from JSON and JSON Lines files, with the file and line of every record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any


@dataclass(frozen=True, slots=True)
class Record:
    """One job (or order) read from a file, with where it came from."""

    source: str
    line: int
    data: Any
    error: str | None = None

    @property
    def where(self) -> str:
        """``file:line``."""
        return f"{self.source}:{self.line}"


def read_records(stream: IO[str], source: str) -> Iterator[Record]:
    """Records of a JSON document (an object or an array) or JSON Lines, told apart by content."""
    text = stream.read()
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Record(source, exc.lineno, None, f"not valid JSON: {exc.msg}")
            return
        for n, item in enumerate(data):
            yield Record(source, n + 1, item)
        return
    if stripped.startswith("{") and "\n" in stripped.rstrip():
        try:
            yield Record(source, 1, json.loads(text))
            return
        except json.JSONDecodeError:
            pass  # not one document: JSON Lines
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            yield Record(source, n, json.loads(line))
        except json.JSONDecodeError as exc:
            yield Record(source, n, None, f"not valid JSON: {exc.msg} (column {exc.colno})")


def as_job(data: Any, *, vendor: str | None, account: str | None, operation: str | None) -> Any:
    """A job document: ``data`` itself when it names a vendor, else ``data`` as the order."""
    if isinstance(data, dict) and "vendor" in data:
        return data
    if isinstance(data, dict) and vendor:
        job: dict[str, Any] = {"vendor": vendor, "order": data}
        if account:
            job["account"] = account
        if operation:
            job["operation"] = operation
        return job
    return data
