"""The platform and its dependencies as wheels, packed for hosts that install offline.

Only playbooks that install the platform ask for it (playbooks.needs_wheelhouse). It is cached
under the wheelhouse dir in two layers, each rebuilt only when its own inputs change:
- the dependencies' wheels (about 100 MB: numpy, scipy, pandas, statsmodels...), keyed by the
  declared dependencies and the interpreter;
- the platform's own wheel, keyed by pyproject.toml and the files of its packages.
The archive handed to Ansible is a plain tar of both (wheels are zip files already: gzip
would spend seconds to save nothing), also cached. A county's servers and edge gateways may
have no route to PyPI, and one archive copied over SSH beats dozens of downloads per host.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

from cityops.errors import CloudError

log = logging.getLogger(__name__)
REPO = Path(__file__).parents[1]
_SUFFIXES = {".py", ".yaml", ".sql", ".html", ".js", ".css", ".json", ".sh", ".conf"}
# what the wheel never holds, though it sits under the packages' folders
_SKIP = {"__pycache__", "node_modules"}


def _project(repo: Path) -> dict:
    return tomllib.loads((repo / "pyproject.toml").read_text())


def _requirements(repo: Path, extras: tuple[str, ...]) -> list[str]:
    """What the hosts install: the core (an edge gateway's, about a third of the size) and
    the named extras (`server` for ingest workers and the other servers); the cloud extra
    stays on the control plane."""
    project = _project(repo)["project"]
    optional = project.get("optional-dependencies", {})
    return [*project.get("dependencies", []), *(r for e in extras for r in optional.get(e, []))]


def _kind(extras: tuple[str, ...]) -> str:
    return "+".join(extras) or "core"


def dependency_digest(repo: Path = REPO, extras: tuple[str, ...] = ("server",)) -> str:
    """The dependencies' wheels depend on what is declared and on this interpreter only."""
    key = [_requirements(repo, extras), sys.version_info[:2],
           platform.machine(), platform.libc_ver()]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]


def source_digest(repo: Path = REPO) -> str:
    """pyproject.toml and the files of the packages it ships (its packages.find include)."""
    digest = hashlib.sha256((repo / "pyproject.toml").read_bytes())
    find = _project(repo).get("tool", {}).get("setuptools", {}).get("packages", {}).get("find")
    tops = sorted({p.rstrip("*") for p in (find or {}).get("include", ["*"])})
    for top in tops:
        for path in sorted((repo / top).rglob("*")) if (repo / top).is_dir() else []:
            if path.suffix in _SUFFIXES and not _SKIP & set(path.parts) and path.is_file():
                digest.update(str(path.relative_to(repo)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(cache_dir: Path) -> Iterator[None]:
    """One builder at a time per cache: two workers asked at once build it once."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with (cache_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_wheelhouse(cache_dir: Path, repo: Path = REPO,
                     extras: tuple[str, ...] = ("server",)) -> Path:
    """A tar holding `wheelhouse/*.whl` of the core and `extras`; each layer reused while its
    inputs do not change. Each kind (core, core+server) is cached beside the other."""
    kind = _kind(extras)
    deps_key, source_key = dependency_digest(repo, extras), source_digest(repo)
    archive = cache_dir / f"wheelhouse-{kind}-{deps_key}-{source_key}.tar"
    if archive.exists():
        return archive
    with _locked(cache_dir):
        if archive.exists():  # built by whoever held the lock before us
            return archive
        deps = _dependency_wheels(cache_dir, repo, extras, deps_key)
        own = _platform_wheel(cache_dir, repo, source_key)
        partial = archive.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            for wheel in [*sorted(deps.glob("*.whl")), own]:
                tar.add(wheel, arcname=f"wheelhouse/{wheel.name}")
        partial.rename(archive)
        _prune(cache_dir, {archive, deps, own}, kind)
    log.info("built %s", archive.name)
    return archive


def _pip_wheel(args: list[str], into: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(into), *args],
        capture_output=True, text=True, check=False, timeout=900)
    if result.returncode != 0:
        raise CloudError(f"building the wheelhouse failed: {result.stderr[-800:]}")


def _dependency_wheels(cache_dir: Path, repo: Path, extras: tuple[str, ...], key: str) -> Path:
    final = cache_dir / f"deps-{_kind(extras)}-{key}"
    if final.is_dir():
        return final
    requirements = _requirements(repo, extras)
    with tempfile.TemporaryDirectory(prefix="deps-", dir=cache_dir) as tmp:
        if requirements:
            _pip_wheel(requirements, Path(tmp) / "wheels")
        else:
            (Path(tmp) / "wheels").mkdir()
        (Path(tmp) / "wheels").rename(final)
    log.info("built the dependency wheels %s", final.name)
    return final


def _platform_wheel(cache_dir: Path, repo: Path, key: str) -> Path:
    final = cache_dir / f"platform-{key}"
    if not final.is_dir():
        with tempfile.TemporaryDirectory(prefix="platform-", dir=cache_dir) as tmp:
            _pip_wheel(["--no-deps", str(repo)], Path(tmp) / "wheel")
            (Path(tmp) / "wheel").rename(final)
    [wheel] = final.glob("*.whl")
    return wheel


def _prune(cache_dir: Path, keep: set[Path], kind: str) -> None:
    """Older layers of this kind; the other kind's archive and wheels stay (a platform wheel
    of an older source is not used by any archive still kept: each archive holds its own)."""
    keep_dirs = {p if p.is_dir() else p.parent for p in keep}
    for old in cache_dir.iterdir():
        if old.name.startswith((f"wheelhouse-{kind}-", f"deps-{kind}-", "platform-")) \
                and old not in keep and old not in keep_dirs:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
