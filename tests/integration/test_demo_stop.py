"""`cityops demo` stops every process it started, whichever way it is stopped: a stop signal
to it, to the make that runs it, or either of them killed outright (cityops/children.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import wait_for

# the demo's supervision, with three long sleepers standing in for the simulators and servers
SUPERVISOR = textwrap.dedent("""
    import sys
    from pathlib import Path
    from cityops.children import (block_stop_signals, start_child, stop_children,
                                  stop_with_parent, wait_for_stop)
    out = Path(sys.argv[1])
    block_stop_signals()
    stop_with_parent()
    procs = []
    try:
        for n in range(3):
            procs.append(start_child([sys.executable, "-c", "import time; time.sleep(600)"],
                                     {}, out.parent / f"child{n}.log"))
        out.write_text(" ".join(str(p.pid) for p in procs))
        wait_for_stop()
    finally:
        stop_children(procs)
""")
REPO = Path(__file__).parents[2]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _start(tmp_path: Path, via_make: bool) -> tuple[subprocess.Popen, list[int]]:
    pids_file = tmp_path / "pids"
    (tmp_path / "supervisor.py").write_text(SUPERVISOR)
    argv = [sys.executable, str(tmp_path / "supervisor.py"), str(pids_file)]
    if via_make:
        (tmp_path / "Makefile").write_text(f"demo:\n\t{' '.join(argv)}\n")
        argv = ["make", "-s", "-C", str(tmp_path), "demo"]
    proc = subprocess.Popen(argv, cwd=REPO, env=os.environ | {"PYTHONPATH": str(REPO)},
                            start_new_session=True)
    wait_for(lambda: pids_file.exists() and pids_file.read_text(), timeout_s=20)
    children = [int(p) for p in pids_file.read_text().split()]
    assert all(_alive(pid) for pid in children)
    return proc, children


def _supervisor_pid(proc: subprocess.Popen, via_make: bool) -> int:
    if not via_make:
        return proc.pid
    kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return int(kids[0])  # make runs the one-command recipe directly (the shell execs it)


@pytest.mark.parametrize(("via_make", "target", "sig"), [
    (False, "supervisor", signal.SIGINT),
    (False, "supervisor", signal.SIGHUP),
    (False, "supervisor", signal.SIGKILL),
    (True, "make", signal.SIGTERM),
    (True, "make", signal.SIGKILL),
    (True, "supervisor", signal.SIGINT),
])
def test_every_child_stops(tmp_path: Path, via_make: bool, target: str, sig: int) -> None:
    proc, children = _start(tmp_path, via_make)
    try:
        pid = proc.pid if target == "make" else _supervisor_pid(proc, via_make)
        os.kill(pid, sig)
        wait_for(lambda: not any(_alive(c) for c in children), timeout_s=20)
        proc.wait(timeout=20)
    finally:
        for c in children:
            if _alive(c):
                os.kill(c, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
