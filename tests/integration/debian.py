"""Tools the integration tests take from Debian's packages (Chromium, wrk): installed with
apt-get when missing, as the machine's root; the test is skipped, saying why, where they cannot
be."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def ensure(program: str, package: str) -> str:
    """The path of ``program`` (a name looked up on the PATH, or an absolute path), installing
    Debian's ``package`` first when it is missing."""
    found = _find(program)
    if found is not None:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(f"no {program}; apt-get cannot install {package} here (not root, or no apt)")
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        if done.returncode != 0:
            pytest.skip(f"could not install {package} ({' '.join(args)}): {done.stderr[-500:]}")
    found = _find(program)
    if found is None:
        pytest.skip(f"apt-get installed {package} but {program} is not there")
    return found


def _find(program: str) -> str | None:
    if os.path.isabs(program):
        return program if os.access(program, os.X_OK) else None
    return shutil.which(program)
