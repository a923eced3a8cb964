"""`cityops worker`: the job worker, with the SSH key Ansible uses made on first start."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path

from cityops.settings import Settings

log = logging.getLogger(__name__)


def ensure_ssh_key(settings: Settings) -> Path:
    """The worker's own key pair; its public half goes into images or cloud key pairs."""
    path = settings.ansible_ssh_key_file or settings.state_dir / "ssh" / "id_ed25519"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cityops-worker",
                        "-f", str(path)], check=True)
        log.info("made the worker's SSH key; public key: %s.pub", path)
    return path


def run(settings: Settings) -> None:
    from cityops.reconnect import stop_on_signals
    from cloud_control.jobs import run_worker

    ensure_ssh_key(settings)

    async def main() -> None:
        # SIGINT/SIGTERM: the running jobs finish, then the worker returns
        await run_worker(settings, stop_on_signals())

    asyncio.run(main())
