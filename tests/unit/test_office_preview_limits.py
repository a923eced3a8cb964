"""The LibreOffice adapter's limits without LibreOffice: a converter that hangs is killed with
its child processes at the timeout, one that cannot be started is a ConversionFailed naming the
command, a file it made no PDF of is reported with a reason, and it runs without a network
interface besides loopback (the real conversions: tests/integration/test_office_preview.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from datafoundation.office_preview import ConversionFailed, convert
from tests.helpers import wait_for


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "soffice"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def _alive(pid: int) -> bool:
    """Running: a killed child left unreaped (a zombie, PID 1 may not reap) counts as dead."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


async def test_a_hanging_converter_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    hang = _script(tmp_path, f"sleep 30 & echo $! > {pids}; wait")
    started = time.monotonic()
    with pytest.raises(ConversionFailed, match=r"did not finish within 0\.5 s"):
        await convert({"0.docx": b"PK"}, soffice=hang, timeout_s=0.5, max_pdf_bytes=1000)
    assert time.monotonic() - started < 5
    child = int(pids.read_text())
    wait_for(lambda: not _alive(child), timeout_s=5, what="the converter's child killed")


async def test_missing_converter_and_missing_or_oversize_pdf(tmp_path: Path) -> None:
    with pytest.raises(ConversionFailed, match=r"could not be started .*no-such-soffice"):
        await convert({"0.docx": b"PK"}, soffice=str(tmp_path / "no-such-soffice"),
                      timeout_s=5, max_pdf_bytes=1000)
    # writes a large PDF for the first file only (--outdir is the argument before the files)
    writer = _script(tmp_path, 'while [ "$1" != --outdir ]; do shift; done; mkdir -p "$2"; '
                               'head -c 2000 /dev/zero > "$2/0.pdf"')
    got = await convert({"0.docx": b"PK", "1.xlsx": b"PK"}, soffice=writer, timeout_s=5,
                        max_pdf_bytes=1000)
    assert "over the limit of 1000 bytes" in got["0.docx"].reason
    assert got["1.xlsx"].pdf is None and "could not read" in got["1.xlsx"].reason


async def test_the_converter_sees_no_network_but_loopback(tmp_path: Path) -> None:
    # /proc/net/dev lists the interfaces of the reader's network namespace
    seen = tmp_path / "interfaces"
    lister = _script(tmp_path, f"tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' > {seen}")
    await convert({"0.docx": b"PK"}, soffice=lister, timeout_s=5, max_pdf_bytes=1000)
    assert seen.read_text().split() == ["lo"]
    await convert({"0.docx": b"PK"}, soffice=lister, timeout_s=5, max_pdf_bytes=1000,
                  no_network=False)
    assert len(seen.read_text().split()) > 1, "this machine has a network: the check means it"
