"""Infrastructure failures (Redis unreachable, bad settings) as one line a person can act on.

The command line shows the line and exits :data:`EXIT_INFRASTRUCTURE`; ``--debug`` adds the
traceback. Anything not recognised here is a defect and keeps its traceback.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

#: Exit code of a command that could not reach its infrastructure or read its settings (bad
#: input is 1, a wrong command line 2).
EXIT_INFRASTRUCTURE = 3

_REDIS_SETTING = "ORDER_DISPATCH_REDIS_URL (or REDIS_URL, or --redis-url)"
_BROKER_SETTING = "ORDER_DISPATCH_BROKER_URL"


def masked_url(url: str) -> str:
    """``url`` with the password (if any) masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unreadable URL)"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def setting_name(loc: tuple[int | str, ...]) -> str:
    """The environment variable that sets the settings field at ``loc``."""
    parts = [str(p) for p in loc]
    if parts and parts[0].upper().startswith(("ORDER_DISPATCH_", "REDIS_URL")):
        head = parts[0].upper()
    else:
        head = "ORDER_DISPATCH_" + (parts[0].upper() if parts else "")
    return "__".join([head, *(p.upper() for p in parts[1:])])


def describe(exc: BaseException) -> str | None:
    """One line saying what failed and which setting to fix, or None when ``exc`` is not an
    infrastructure failure."""
    import redis
    from pydantic_settings import SettingsError

    if isinstance(exc, redis.exceptions.AuthenticationError):
        return f"Redis refused the login ({exc}); fix the password in {_REDIS_SETTING}"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        reason = str(exc).rstrip(".") or type(exc).__name__
        return f"cannot reach Redis ({reason}); check that it runs, or set {_REDIS_SETTING}"
    if isinstance(exc, SettingsError):
        field = str(exc).partition('field "')[2].partition('"')[0]
        name = setting_name((field,)) if field else "the ORDER_DISPATCH_* variables"
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        return f"bad settings: {name} is not valid JSON{cause}"
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        problems = [
            f"{setting_name(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors(include_url=False)
        ]
        return "bad settings: " + "; ".join(problems)
    if _is_broker_failure(exc):
        return f"cannot reach the broker ({exc}); check that it runs, or set {_BROKER_SETTING}"
    return None


def _is_broker_failure(exc: BaseException) -> bool:
    try:
        from kombu.exceptions import OperationalError
    except ImportError:
        return False
    return isinstance(exc, OperationalError)
