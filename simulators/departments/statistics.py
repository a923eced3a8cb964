"""统计局's monthly drop: one XLSX per month (规上工业 figures per firm), written into a folder
that the platform reads directly or over SFTP (sftp_server.py)."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from openpyxl import Workbook

from simulators.departments.enterprise_registry import make_uscc

HEADER = ["record_id", "uscc", "month", "output_value", "revenue", "employees"]


def write_month(folder: Path, month: str, firms: int = 30, seed_value: int = 21) -> Path:
    """`<month>.xlsx` (e.g. 2026-03.xlsx) with one row per firm; the same firms every month."""
    rng = random.Random(seed_value)
    codes = [make_uscc(rng) for _ in range(firms)]
    month_rng = random.Random(f"{seed_value}-{month}")
    book = Workbook()
    sheet = book.active
    sheet.title = "规上工业"
    sheet.append(HEADER)
    for code in codes:
        sheet.append([f"{month}/{code}", code, month, round(month_rng.uniform(100, 5e4), 1),
                      round(month_rng.uniform(100, 6e4), 1), month_rng.randint(20, 900)])
    path = folder / f"{month}.xlsx"
    book.save(path)
    return path


class SftpServer:
    """OpenSSH's sshd on a loopback port, its sftp subsystem serving as root with one key."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.proc: subprocess.Popen | None = None

    def start(self, client_public_key: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        host_key = self.root / "host_key"
        if not host_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)],
                           check=True)
        (self.root / "authorized_keys").write_text(client_public_key.strip() + "\n")
        (self.root / "authorized_keys").chmod(0o600)
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"PidFile {self.root}/sshd.pid\nAuthorizedKeysFile {self.root}/authorized_keys\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n"
            "StrictModes no\nSubsystem sftp internal-sftp\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=(self.root / "sshd.log").open("w"))

    @property
    def host_key(self) -> str:
        """The public host key ("ssh-ed25519 AAAA..."), for the source's settings."""
        return " ".join((self.root / "host_key.pub").read_text().split()[:2])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
