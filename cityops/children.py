"""Child processes that never outlive the process that started them (`cityops demo`).

A demo leaves a dozen servers running if any way of stopping it is missed, so every way is
covered: SIGINT, SIGTERM or SIGHUP to the supervisor stop the children in order; if the
supervisor itself is killed outright, the kernel sends each child SIGTERM (the parent-death
signal); and the supervisor asks for the same signal when *its* parent (make) dies. GNU make
passes SIGTERM on to its recipe but not a lone SIGINT (it expects the terminal to have sent
that to the whole process group, as Ctrl-C does), which docs/operations.md states.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
from pathlib import Path

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal(sig: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def block_stop_signals() -> None:
    """Hold the stop signals for `wait_for_stop`. Blocked signals stay pending even where the
    shell that started us set them to be ignored (a background job's SIGINT)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def stop_with_parent() -> None:
    """SIGTERM to this process when its parent dies (make killed, the terminal gone)."""
    parent = os.getppid()
    _set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _child_setup() -> None:
    # runs in the child between fork and exec: its own signal mask, and SIGTERM when the
    # supervisor dies, however it dies
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    _set_parent_death_signal(signal.SIGTERM)


def start_child(argv: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """A child in a session of its own (the terminal's Ctrl-C reaches only the supervisor,
    which then stops the children in order) that the kernel stops if the supervisor dies."""
    with log_path.open("ab") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=_child_setup,
                                start_new_session=True)


def wait_for_stop() -> int:
    """Block until one of the stop signals arrives; returns it."""
    return signal.sigwait(STOP_SIGNALS)


def stop_children(procs: list[subprocess.Popen], timeout_s: float = 10) -> None:
    """SIGTERM to each child, last started first; SIGKILL to any still there after the wait."""
    for proc in reversed(procs):
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
