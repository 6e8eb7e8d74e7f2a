"""``order-dispatch worker --processes N``: N worker processes started and stopped as one.

One worker process uses at most one core (the GIL), and an order costs a few milliseconds of
CPU, so a worker that should use the machine runs one process per core. Like Sidekiq
Enterprise's swarm, the command then starts that many ``order-dispatch worker --processes 1``
children and stands for them towards the supervisor (supervisord, systemd, Docker):

- each child is a Celery node of its own, named after the command's ``--hostname`` with its
  number added (``worker1@%h`` -> ``worker1-1@%h``, ``worker1-2@%h``), so Flower and
  ``celery inspect`` show every process;
- SIGTERM, SIGINT and SIGQUIT are passed to every child: a warm stop, or a cold one, as for
  a single worker;
- the children live and stop together. When one exits by itself, the others are stopped warm
  and the command exits with that child's status (1 if it was 0), so the supervisor restarts the
  whole set: one restart policy, in one place;
- a child dies with its parent (Linux ``PR_SET_PDEATHSIG``): a killed command leaves no
  worker behind, exactly like a killed single worker. Its running jobs' messages stay unacked
  and come back after the visibility timeout.

The exit status follows the single worker's: 0 after a requested stop, 78 (``EX_CONFIG``) when a
child refused its configuration.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from order_dispatch.logs import get_logger

log = get_logger("order_dispatch_cli.swarm")

#: The signals passed on to every child.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def default_processes() -> int:
    """One per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def child_args(celery_args: Sequence[str], index: int) -> list[str]:
    """``celery_args`` with the node name numbered for child ``index`` (1-based)."""
    args = list(celery_args)
    for i, arg in enumerate(args):
        for flag in ("--hostname", "-n"):
            if arg == flag and i + 1 < len(args):
                args[i + 1] = numbered(args[i + 1], index)
                return args
            if arg.startswith(flag + "="):
                args[i] = f"{flag}={numbered(arg.split('=', 1)[1], index)}"
                return args
    return [*args, "--hostname", f"worker-{index}@%h"]


def numbered(hostname: str, index: int) -> str:
    """``name@host`` -> ``name-<index>@host`` (``name`` -> ``name-<index>``)."""
    name, at, host = hostname.partition("@")
    return f"{name}-{index}{at}{host}"


def _die_with_parent() -> None:
    """In the child, before exec: the kernel kills it when its parent dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


class Swarm:
    """The children of one ``order-dispatch worker --processes N``."""

    def __init__(self, commands: Sequence[Sequence[str]], poll_s: float = 0.2) -> None:
        self.commands = [list(c) for c in commands]
        self.poll_s = poll_s
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping: int | None = None
        """The signal of a requested stop, once one came."""

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping is None:
            log.info("stop requested; passing it to every worker process", signal=signum)
        self.stopping = signum
        self._signal_all(signum)

    def _signal_all(self, signum: int) -> None:
        for child in self.children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signum)

    def run(self) -> int:
        """Start every child, wait for them all, and return the command's exit status."""
        for sig in FORWARDED:
            signal.signal(sig, self._forward)
        for command in self.commands:
            # A session of its own: a terminal's Ctrl+C or a supervisor's signal to the process
            # group reaches each child once, through this process.
            self.children.append(
                subprocess.Popen(command, preexec_fn=_die_with_parent, start_new_session=True)
            )
        log.info("worker processes started", processes=len(self.children),
                 pids=[c.pid for c in self.children])
        status = 0
        while any(c.poll() is None for c in self.children):
            for n, child in enumerate(self.children, 1):
                code = child.returncode
                if code is None or self.stopping is not None or status:
                    continue
                # A child that stops by itself stops the set; the supervisor restarts it whole.
                status = code if code > 0 else 1
                log.error(
                    "a worker process stopped by itself; stopping the others",
                    process=n,
                    pid=child.pid,
                    exit_status=code,
                )
                self._signal_all(signal.SIGTERM)
            time.sleep(self.poll_s)
        if status:
            return status
        codes = [c.returncode for c in self.children]
        if self.stopping is not None and all(code in (0, -self.stopping) for code in codes):
            return 0
        failed = [code for code in codes if code != 0]
        if not failed:
            return 0 if self.stopping is not None else 1
        return failed[0] if failed[0] > 0 else 1


def run(processes: int, argv_head: Sequence[str], celery_args: Sequence[str]) -> int:
    """Run ``processes`` children ``argv_head --processes 1 <celery_args numbered>``."""
    commands = [
        [*argv_head, "--processes", "1", *child_args(celery_args, n)]
        for n in range(1, processes + 1)
    ]
    return Swarm(commands).run()


def this_command() -> list[str]:
    """How to start ``order-dispatch worker`` again with this interpreter."""
    return [sys.executable, "-m", "order_dispatch_cli", "worker"]
