"""The platform and its dependencies as wheels, packed for hosts that install offline.

Built once per source version and cached under the state dir: a county's servers and edge
gateways may have no route to PyPI, and one archive copied over SSH is much faster than
fetching dozens of packages on every host.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from cityops.errors import CloudError

log = logging.getLogger(__name__)
REPO = Path(__file__).parents[1]
_SOURCES = ("cityops", "edge_agents", "ingestion", "api", "cloud_control", "infra", "simulators")
_SUFFIXES = {".py", ".yaml", ".sql", ".html", ".js", ".css", ".json", ".sh", ".conf"}


def source_digest() -> str:
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    for top in _SOURCES:
        for path in sorted((REPO / top).rglob("*")):
            if path.suffix in _SUFFIXES and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_wheelhouse(cache_dir: Path) -> Path:
    """A tar.gz holding `wheelhouse/*.whl`; reused while the sources do not change."""
    archive = cache_dir / f"wheelhouse-{source_digest()}.tar.gz"
    if archive.exists():
        return archive
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cityops-wheels-") as tmp:
        wheels = Path(tmp) / "wheelhouse"
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels),
             str(REPO)],
            capture_output=True, text=True, check=False, timeout=900,
        )
        if result.returncode != 0:
            raise CloudError(f"building the wheelhouse failed: {result.stderr[-800:]}")
        partial = archive.with_suffix(".partial")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(wheels, arcname="wheelhouse")
        partial.rename(archive)
    for old in cache_dir.glob("wheelhouse-*.tar.gz"):
        if old != archive:
            old.unlink(missing_ok=True)
    log.info("built %s", archive.name)
    return archive
