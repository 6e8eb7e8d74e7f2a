"""Reading jobs from JSON and JSON Lines files, record by record, with the file and line of each.

A file is JSON Lines (one JSON object a line; blank lines and lines starting with ``#`` are
skipped), or one JSON object that may span lines (a pretty-printed ``.json`` file). Told apart
by content: when the first record's line is not a whole JSON value and the text ends there
only because the object goes on, the file is read as one document.

Every record is a JSON object. An array anywhere (a whole file, or a line) is an error: a
producer that wrote one almost certainly meant many records, and reading it as one would either
lose them or queue them without saying so. An empty file, or one with no records, is an error
too, so a wrong path or an export that wrote nothing never passes for success.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

_ARRAY = (
    "is a JSON array; write one JSON object a line (JSON Lines), or one object in a .json file"
)


@dataclass(frozen=True, slots=True)
class Record:
    """One job (or order) read from a file, with where it came from (``error`` when unreadable)."""

    source: str
    line: int
    data: Any
    error: str | None = None

    @property
    def where(self) -> str:
        """``file:line`` (just ``file`` for an error about the whole file)."""
        return f"{self.source}:{self.line}" if self.line else self.source


def _record(source: str, line: int, data: Any) -> Record:
    if isinstance(data, list):
        return Record(source, line, None, _ARRAY)
    if not isinstance(data, dict):
        return Record(source, line, None, f"is a JSON {_json_type(data)}, not an object")
    return Record(source, line, data)


def _json_type(data: Any) -> str:
    if isinstance(data, str):
        return "string"
    if isinstance(data, bool):
        return "boolean"
    if data is None:
        return "null"
    return "number"


def _open_document(line: str) -> bool:
    """True when ``line`` starts a JSON object or array it does not finish (a pretty-printed
    file)."""
    text = line.strip()
    if not text.startswith(("{", "[")):
        return False
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return exc.pos >= len(text)
    return False


def read_records(stream: IO[str], source: str) -> Iterator[Record]:
    """The records of ``stream`` in order, each with its line; unreadable ones carry ``error``.

    JSON Lines are read one line at a time (a file of any length is never held whole). The
    last record is an error about the whole file (line 0) when the file holds no records.
    """
    found = blank = False
    for number, line in enumerate(stream, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            blank = True
            continue
        if not found and _open_document(text):
            yield from _document(line + stream.read(), source, number)
            return
        found = True
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            yield Record(source, number, None, f"not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        yield _record(source, number, data)
    if not found:
        why = "only blank lines and comments" if blank else "the file is empty"
        yield Record(source, 0, None, f"holds no records ({why})")


def _document(text: str, source: str, first_line: int) -> Iterator[Record]:
    """One JSON object spanning lines, starting at ``first_line``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        line = first_line + exc.lineno - 1
        yield Record(source, line, None, f"not valid JSON: {exc.msg} (column {exc.colno})")
        return
    yield _record(source, first_line, data)


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
