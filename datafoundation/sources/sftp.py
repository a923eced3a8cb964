"""SFTP file drops: the files are fetched with OpenSSH's `sftp` client into a private temporary
folder, then read as a local file drop. The key (credentials `private_key`) is written 0600
for the call only; the server's host key must be given (settings `host_key`): no trust on
first use."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from cityops.errors import SourceError, SourceUnavailable
from datafoundation.sources.files import FileDropSource

_UNREACHABLE = ("Connection refused", "timed out", "No route to host")


class SftpSource(FileDropSource):
    def __init__(self, name: str, settings: dict, credentials: dict[str, str]) -> None:
        super().__init__(name, settings, credentials)
        # the API stores a source's one secret as `password`: for sftp, the private key
        self._key = credentials.get("private_key") or credentials.get("password", "")
        self._work: Path | None = None
        self._fetched: set[str] = set()

    def connect(self) -> None:
        for field in ("host", "port", "user", "path", "host_key"):
            if not self.settings.get(field):
                raise SourceError(f"source {self.name}: settings.{field} is required for sftp")
        self._work = Path(tempfile.mkdtemp(prefix="cityops-sftp-"))
        self.folder = self._work / "files"
        self.folder.mkdir()

    def close(self) -> None:
        if self._work:
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None

    def _files(self, pattern: str) -> list[Path]:
        if pattern not in self._fetched:
            self._fetch(pattern)
            self._fetched.add(pattern)
        return super()._files(pattern)

    def _fetch(self, pattern: str) -> None:
        assert self._work is not None
        s = self.settings
        key, known = self._work / "key", self._work / "known_hosts"
        key.touch(mode=0o600)
        key.write_text(self._key.strip() + "\n")
        host = s["host"] if int(s["port"]) == 22 else f"[{s['host']}]:{s['port']}"
        known.write_text(f"{host} {s['host_key'].strip()}\n")
        if any(c.isspace() or c in "\"'\\" for c in pattern + s["path"]):
            raise SourceError(f"source {self.name}: the path and file pattern may not hold "
                              "spaces or quotes over sftp")
        # the glob unquoted: sftp would take a quoted one literally
        batch = f'cd "{s["path"]}"\nlcd "{self.folder}"\n-mget -p {pattern}\n'
        result = subprocess.run(
            ["sftp", "-b", "-", "-P", str(s["port"]), "-i", str(key),
             "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
             "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
             "-o", f"ConnectTimeout={int(s.get('connect_timeout_s', 10))}",
             f"{s['user']}@{s['host']}"],
            input=batch, capture_output=True, text=True, timeout=300, check=False)
        key.unlink()
        if result.returncode != 0:
            text = " ".join(result.stderr.split())[-300:]
            kind = SourceUnavailable if any(u in text for u in _UNREACHABLE) else SourceError
            raise kind(f"source {self.name}: sftp {s['user']}@{s['host']}:{s['port']} "
                       f"{s['path']}: {text or 'failed'}")
