"""Stable worker identities on one host.

An ingest worker keeps a persistent MQTT session so that nothing is lost while it restarts;
the broker keeps routing its share of messages to that session meanwhile. So a restarted
worker must come back under the same client id: each worker takes the lowest free slot, held
by an flock that the kernel releases even on kill -9.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import IO

MAX_SLOTS = 64


class WorkerSlot:
    def __init__(self, client_id: str, handle: IO[str]) -> None:
        self.client_id = client_id
        self._handle = handle

    def release(self) -> None:
        self._handle.close()


def claim_slot(state_dir: Path, prefix: str = "ingest") -> WorkerSlot:
    lock_dir = state_dir / "slots"
    lock_dir.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0].lower() or "host"
    for n in range(1, MAX_SLOTS + 1):
        handle = (lock_dir / f"{prefix}-{n}.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        handle.write(str(os.getpid()))
        handle.flush()
        return WorkerSlot(f"{prefix}-{host}-{n}", handle)
    raise RuntimeError(f"more than {MAX_SLOTS} {prefix} workers on this host")
