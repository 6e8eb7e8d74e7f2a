"""Keeps secrets out of logs, result events and error messages.

Two rules: values of configured credentials are replaced wherever they appear in a string, and
values under keys that name a secret (``api_key``, ``token``, ``password``, ...) are replaced
whatever they are.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

_SECRET_KEY = re.compile(
    r"(api[-_]?key|apikey|token|secret|password|passwd|authori[sz]ation|authentication|credential)",
    re.IGNORECASE,
)
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
            _pattern = re.compile("|".join(re.escape(v) for v in alternatives))


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
