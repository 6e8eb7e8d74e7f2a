"""The README says what the code does: what it tells a newcomer to type works from a clone."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
