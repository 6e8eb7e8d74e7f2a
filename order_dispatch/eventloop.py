"""The product's event loops: uvloop's where it is installed, else the standard library's.

uvloop is a dependency on Linux and macOS (not Windows). Measured in
``benchmarks/loop_handoff.py``: a vendor call handed from a task thread to the loop costs the
process about a sixth less CPU on uvloop than on the standard library's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

_new_loop: Callable[[], asyncio.AbstractEventLoop]
try:
    import uvloop

    _new_loop = uvloop.new_event_loop
except ImportError:  # Windows
    _new_loop = asyncio.new_event_loop


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when it is installed, else the standard library's."""
    return _new_loop()
