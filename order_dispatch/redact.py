"""Keeps secrets out of logs, result events and error messages.

Two rules: values of configured credentials are replaced where they stand as a value in a
string, and values under keys that name a secret (``api_key``, ``token``, ``password``, ...) are
replaced whatever they are.

"Stands as a value": the secret is a whole token, not part of a longer word, file name or path.
It is masked as a whole string, after ``=`` or ``:`` (a query value, a header value, ``key: ...``),
between quotes (a JSON string), between spaces or brackets, and before sentence punctuation. It
is left alone inside another word, name or path: with the secret ``orders``, ``sourceorders``,
``/v1/orders`` and ``orders.jsonl`` stay readable, while ``api_key=orders``, ``"orders"`` and
``X-API-KEY: orders`` become ``***``. A secret is never a path segment of a vendor's URL here
(credentials travel in headers, query values and bodies).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

_SECRET_KEY = re.compile(
    r"(api[-_]?key|apikey|token|secret|password|passwd|authori[sz]ation|authentication|credential)",
    re.IGNORECASE,
)
#: A character that continues a word, a name or a path: a secret next to one is part of it.
_WORD = r"[\w\-./+%~]"
#: Not right after such a character (``sourceorders``, ``/v1/orders``).
_BEFORE = rf"(?<!{_WORD})"
#: Not followed by one, except a full stop that ends a sentence (``orders.jsonl`` is a name).
_AFTER = rf"(?![\w\-/+%~])(?!\.{_WORD})"
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register(values: Iterable[str]) -> None:
    """Add secret values to mask from now on (values shorter than 4 characters are ignored)."""
    global _pattern
    with _lock:
        _secrets.update(v for v in values if v and len(v) >= 4)
        if _secrets:
            alternatives = sorted(_secrets, key=len, reverse=True)
            _pattern = re.compile(
                _BEFORE + "(?:" + "|".join(re.escape(v) for v in alternatives) + ")" + _AFTER
            )


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True when a field named ``key`` holds a secret."""
    return bool(_SECRET_KEY.search(key))


def text(value: str) -> str:
    """``value`` with every registered secret masked."""
    pattern = _pattern
    return pattern.sub(MASK, value) if pattern is not None else value


def value(obj: Any) -> Any:
    """A copy of ``obj`` (str, mapping, list, scalar) with secrets masked."""
    if isinstance(obj, str):
        return text(obj)
    if isinstance(obj, Mapping):
        return {
            k: (MASK if isinstance(k, str) and is_secret_key(k) and v else value(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [value(v) for v in obj]
    return obj
