"""``python -m order_dispatch_ops.probe URL [LOGIN_ENV]``: exit 0 when URL answers 2xx, else 1
(container health checks). The basic-auth login, if any, is read from the environment variable named
LOGIN_ENV (its first ``user:password``), so it never appears in a command line."""

from __future__ import annotations

import base64
import os
import sys
import urllib.error
import urllib.request


def probe(url: str, login_env: str | None = None, timeout: float = 5.0) -> str | None:
    """None when ``url`` answers 2xx; otherwise why not, in one line."""
    request = urllib.request.Request(url)
    if login_env:
        login = os.environ.get(login_env, "").split(",")[0]
        if not login:
            return f"{login_env} is not set"
        request.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
    return None if 200 <= status < 300 else f"{url}: HTTP {status}"


def main(argv: list[str]) -> int:
    """The command line; returns the exit status."""
    if len(argv) not in (1, 2):
        print("usage: python -m order_dispatch_ops.probe URL [LOGIN_ENV]", file=sys.stderr)
        return 2
    problem = probe(argv[0], argv[1] if len(argv) == 2 else None)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
