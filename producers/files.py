"""Reading jobs from JSON and JSON Lines files, record by record, with the file and line of each.

Files are read as bytes and decoded line by line as UTF-8: a line that is not UTF-8 is an
invalid record (named by file and line, the other records are read on), and a leading byte-order
mark (as Windows tools write them) is skipped.

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

import codecs
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


def _text(raw: bytes | str) -> str:
    """``raw`` decoded as UTF-8 (``UnicodeDecodeError`` when it is not)."""
    return raw if isinstance(raw, str) else raw.decode("utf-8")


def _without_bom(raw: bytes | str) -> bytes | str:
    if isinstance(raw, bytes):
        return raw.removeprefix(codecs.BOM_UTF8)
    return raw.removeprefix("\ufeff")


def _joined(head: bytes | str, rest: bytes | str) -> bytes | str:
    if isinstance(head, bytes) and isinstance(rest, bytes):
        return head + rest
    return str(head) + str(rest)


def _not_utf8(raw: bytes, exc: UnicodeDecodeError) -> str:
    return (
        f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
        "save the file as UTF-8"
    )


def read_records(stream: IO[bytes] | IO[str], source: str) -> Iterator[Record]:
    """The records of ``stream`` in order, each with its line; unreadable ones carry ``error``.

    JSON Lines are read one line at a time (a file of any length is never held whole). A binary
    stream is decoded line by line (a text stream is taken as decoded). The last record is an
    error about the whole file (line 0) when the file holds no records.
    """
    found = blank = False
    lines: Iterator[bytes | str] = iter(stream)
    for number, raw in enumerate(lines, start=1):
        if number == 1:
            raw = _without_bom(raw)
        try:
            line = _text(raw)
        except UnicodeDecodeError as exc:
            assert isinstance(raw, bytes)
            found = True
            yield Record(source, number, None, _not_utf8(raw, exc))
            continue
        text = line.strip()
        if not text or text.startswith("#"):
            blank = True
            continue
        if not found and _open_document(text):
            yield from _document(_joined(raw, stream.read()), source, number)
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


def _document(raw: bytes | str, source: str, first_line: int) -> Iterator[Record]:
    """One JSON object spanning lines, starting at ``first_line``."""
    try:
        text = _text(raw)
    except UnicodeDecodeError as exc:
        assert isinstance(raw, bytes)
        start = raw.rfind(b"\n", 0, exc.start) + 1
        line = first_line + raw.count(b"\n", 0, exc.start)
        yield Record(source, line, None, _not_utf8(raw[start:], _shifted(exc, start)))
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        line = first_line + exc.lineno - 1
        yield Record(source, line, None, f"not valid JSON: {exc.msg} (column {exc.colno})")
        return
    yield _record(source, first_line, data)


def _shifted(exc: UnicodeDecodeError, by: int) -> UnicodeDecodeError:
    """``exc`` with its position counted from byte ``by`` (the start of its line)."""
    return UnicodeDecodeError(
        exc.encoding, exc.object[by:], exc.start - by, exc.end - by, exc.reason
    )


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
