"""The README says what the code does: what it tells a newcomer to type works from a clone."""

from __future__ import annotations

import fnmatch
import inspect
import re
import tomllib
from pathlib import Path

from order_dispatch.broker import queue_key
from order_dispatch.keys import Keys

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_pip_install_in_the_readme_works_from_a_clone() -> None:
    """The package is not on a registry: ``pip install 'order-dispatch[flower]'`` finds
    nothing. Every install line installs the clone (``.``), with extras that exist."""
    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    lines = [line for line in README.splitlines() if re.search(r"\bpip install\b", line)]
    assert lines
    for line in lines:
        command = line.split("#", 1)[0]
        if "-r " in command or "--requirement" in command:
            continue
        target = re.search(r"pip install (?:-e |--editable )?'?([^'\s]+)'?", command)
        assert target is not None, line
        path, _, wanted = target.group(1).partition("[")
        assert path == ".", f"installs {target.group(1)!r}, not the clone: {line}"
        assert set(wanted.rstrip("]").split(",")) - {""} <= extras, line


def _sandbox_rows() -> dict[str, str]:
    """The rows of the README's sandbox table (vendor, endpoints, demo credentials)."""
    section = README.split("## Try it without vendor credentials", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0] != "`vendor`":
            rows[cells[0].strip("`")] = cells[2]
    return rows


def test_the_readmes_sandbox_credentials_are_the_ones_the_sandbox_accepts() -> None:
    """Every credential of every vendor's ``--print-accounts`` default stands in that vendor's
    row, and the row names no other ``sandbox-...`` value (Sophio's said ``sophio`` /
    ``orders``, which the sandbox answers with 401)."""
    from order_dispatch_sandbox.accounts import sandbox_accounts

    accounts = sandbox_accounts("http://127.0.0.1:8787", from_env=False)
    rows = _sandbox_rows()
    assert set(rows) == set(accounts)
    for vendor, account in accounts.items():
        row = rows[vendor]
        shown = set(re.findall(r"`([^`]+)`", row))
        values = {str(v) for v in account["default"]["credentials"].values()}
        assert all(any(value in s for s in shown) for value in values), (vendor, row)
        named = {w for s in shown for w in re.findall(r"sandbox-[\w-]+", s)}
        assert named <= values, (vendor, row)


def test_the_quick_start_uses_the_printed_accounts() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert 'ORDER_DISPATCH_ACCOUNTS="$(order-dispatch sandbox --print-accounts)"' in quick_start
    assert "pip install -e '.[" in quick_start


def test_the_readmes_key_table_names_every_key_the_product_writes_and_no_other() -> None:
    """Each key :class:`~order_dispatch.keys.Keys` makes matches a row of the README's key
    table, and each row matches a key it makes: the table cannot drift from the code."""
    keys = Keys("od")
    made = {queue_key(keys.queue("X"), 3)}  # a queue at a priority above 0
    for name, member in inspect.getmembers(Keys):
        if name.startswith("_") or name == "prefix":
            continue
        if isinstance(member, property):
            made.add(getattr(keys, name))
        else:
            params = len(inspect.signature(member).parameters) - 1
            made.add(member(keys, *["X"] * params))
    start = README.index("| key | type | what |")
    rows = README[start:].split("\n\n", 1)[0].splitlines()[2:]
    patterns = [
        re.sub(r"<[^>]*>", "*", name).replace("\\x06\\x16", "\x06\x16")
        for row in rows
        for name in re.findall(r"`([^`]+)`", row.split(" | ")[0])
    ]
    assert len(patterns) >= len(rows) > 20
    unlisted = sorted(k for k in made if not any(fnmatch.fnmatchcase(k, p) for p in patterns))
    assert not unlisted, f"keys the README's table does not list: {unlisted}"
    unknown = [p for p in patterns if not any(fnmatch.fnmatchcase(k, p) for k in made)]
    assert not unknown, f"rows of the README's table that name no key the product makes: {unknown}"
