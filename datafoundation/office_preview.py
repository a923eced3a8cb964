"""The one module that runs LibreOffice: office files (docx, xlsx, pptx, doc, xls) to PDF for the
部门工作台's preview (datafoundation/catalogue/previews.py decides when).

`soffice --headless --convert-to pdf` (Debian's libreoffice-*-nogui, infra/local/install.sh) is
run with a private, throwaway profile: two conversions never share a profile (LibreOffice
refuses a second process on one) and nothing is left in the service account's home. Several
files go in one call, so LibreOffice's start (1.5-10 s) is paid once for all of them. It runs
with a timeout (the whole process group killed at the end of it) and reads only the copies
written to its temporary directory. It needs no network and gets none: a document can link
images on a web server, which LibreOffice would fetch, so it runs in a network namespace of
its own with only a loopback (`unshare --user --map-root-user --net`, util-linux; no root
needed where the kernel allows user namespaces, as Debian's does), unless turned off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cityops.errors import PlatformError

log = logging.getLogger(__name__)


class ConversionFailed(PlatformError):
    """LibreOffice could not be run, or did not finish in time."""

    code = "preview_failed"


@dataclass(frozen=True)
class Converted:
    pdf: bytes | None = None
    reason: str | None = None  # why there is no PDF


def _environment(home: Path) -> dict[str, str]:
    # no proxy settings, no desktop session: LibreOffice is given only what it needs
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    return {**keep, "HOME": str(home), "SAL_USE_VCLPLUGIN": "svp"}


async def _run(command: list[str], home: Path, timeout_s: float) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=_environment(home), start_new_session=True)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):  # its helper processes too
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")[-500:]


async def convert(files: dict[str, bytes], *, soffice: str, timeout_s: float,
                  max_pdf_bytes: int, no_network: bool = True) -> dict[str, Converted]:
    """Each named file (its name ends in its suffix, e.g. "3.docx") as a PDF or a reason."""
    if shutil.which(soffice) is None:  # said plainly, not as unshare's failure to run it
        raise ConversionFailed(f"LibreOffice could not be started ({soffice}): not found")
    with tempfile.TemporaryDirectory(prefix="cityops-office-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        for name, data in files.items():
            (root / "in" / name).write_bytes(data)
        isolate = ["unshare", "--user", "--map-root-user", "--net"] if no_network else []
        command = [*isolate, soffice, f"-env:UserInstallation={(root / 'profile').as_uri()}",
                   "--headless", "--norestore", "--nologo", "--nodefault", "--nolockcheck",
                   "--convert-to", "pdf", "--outdir", str(root / "out"),
                   *(str(root / "in" / name) for name in files)]
        try:
            status, output = await _run(command, root, timeout_s)
        except TimeoutError:
            raise ConversionFailed(f"LibreOffice did not finish within {timeout_s:g} s") from None
        except OSError as err:
            raise ConversionFailed(f"LibreOffice could not be started ({soffice}): {err}") from err
        if status != 0:  # e.g. user namespaces refused: every file then says why below
            log.warning("soffice ended with %s: %s", status, output)
        return {name: _result(root / "out" / f"{Path(name).stem}.pdf", max_pdf_bytes)
                for name in files}


def _result(pdf: Path, max_pdf_bytes: int) -> Converted:
    if not pdf.is_file() or pdf.stat().st_size == 0:
        return Converted(reason="LibreOffice could not read the file (damaged, protected by a"
                                " password, or not the office format its name says)")
    if pdf.stat().st_size > max_pdf_bytes:
        return Converted(reason=f"the PDF ({pdf.stat().st_size} bytes) is over the limit of"
                                f" {max_pdf_bytes} bytes")
    return Converted(pdf=pdf.read_bytes())
