"""Who may see an operations endpoint: loopback addresses, and ``user:password`` logins."""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any


def is_loopback(address: str) -> bool:
    """True for addresses only this machine reaches (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def parse_logins(value: str, setting: str) -> list[str]:
    """``user:password[,user:password...]`` as a list; ValueError naming ``setting`` when a pair
    lacks its user or its password."""
    pairs = value.split(",")
    for pair in pairs:
        user, sep, password = pair.partition(":")
        if not sep or not user or not password:
            raise ValueError(f"{setting}: each entry must be user:password with both parts set")
    return pairs


def require_login_beyond_loopback(address: str, has_login: bool, setting: str) -> None:
    """ValueError when ``address`` is reachable from other machines and no login guards it."""
    if not is_loopback(address) and not has_login:
        where = address or "every interface"
        raise ValueError(
            f"would listen on {where} without a login: set {setting}=user:password, "
            "or listen on 127.0.0.1"
        )


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def basic_auth(app: WsgiApp, logins: list[str], realm: str) -> WsgiApp:
    """``app`` behind HTTP basic auth: 401 unless the request carries one of ``logins``."""
    expected = [login.encode() for login in logins]

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        try:
            given = base64.b64decode(token, validate=True) if scheme == "Basic" else b""
        except binascii.Error:
            given = b""
        # Compare against every login so the time taken says nothing about which one matched.
        if not sum(hmac.compare_digest(given, login) for login in expected):
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", f'Basic realm="{realm}"'), ("Content-Type", "text/plain")],
            )
            return [b"login required\n"]
        return app(environ, start_response)

    return guarded
