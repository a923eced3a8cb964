"""数据汇聚 from the 统计局's monthly XLSX drop, in a folder and over SFTP (a real sshd):
one file per batch with its name as the cursor, a file that is not the XLSX it claims failing
the run by name with the months before it kept, a key that is not unique refused."""

from __future__ import annotations

import re
import subprocess

import psycopg
import pytest

from cityops.errors import SourceError
from datafoundation import register
from datafoundation.runner import run_sync
from simulators.departments.statistics import SftpServer, write_month
from tests.helpers import free_port, port_open, wait_for
from tests.integration.datafoundation.conftest import SECRET_KEY


def _system(database_url: str, slug: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES ('tjj', '统计局') "
                     "ON CONFLICT DO NOTHING")
        return register.add_system(conn, slug, "统计数据报送", "tjj")


def _sync(database_url: str, system: int, kind: str, settings: dict, secret: str | None,
          name: str | None = None) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        source = register.add_source(conn, SECRET_KEY, system, name or kind, kind, settings,
                                     {"password": secret} if secret else None)
        return register.add_sync(conn, source, "*.xlsx", "monthly", "incremental",
                                 ["record_id"], cursor_column="_file")


def _months(database_url: str, schema: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute(f"SELECT _file, count(*) FROM {schema}.monthly "
                                 "GROUP BY _file ORDER BY _file").fetchall())


def test_file_drop_months_bad_file_and_duplicate_keys(tmp_path, database_url):
    drop = tmp_path / "drop"
    drop.mkdir()
    for month in ("2026-01", "2026-02"):
        write_month(drop, month)
    sync = _sync(database_url, _system(database_url, "tj_files"), "file_drop",
                 {"path": str(drop)}, None)
    run_sync(database_url, SECRET_KEY, sync)
    assert _months(database_url, "raw_tj_files") == {"2026-01.xlsx": 30, "2026-02.xlsx": 30}

    write_month(drop, "2026-03")
    (drop / "2026-04.xlsx").write_text("月份,产值\n2026-04,1\n")  # a CSV named .xlsx
    with pytest.raises(SourceError, match=r"source file_drop, file 2026-04\.xlsx: not a "
                                          r"readable XLSX file"):
        run_sync(database_url, SECRET_KEY, sync)
    # the month before the bad file was committed and stays
    assert _months(database_url, "raw_tj_files")["2026-03.xlsx"] == 30

    (drop / "2026-04.xlsx").unlink()
    duplicated = write_month(drop, "2026-05")
    from openpyxl import load_workbook
    book = load_workbook(duplicated)
    book.active.append(list(next(book.active.iter_rows(min_row=2, values_only=True))))
    book.save(duplicated)
    # the repeated record is set aside by name, the rest of the file loads
    run = run_sync(database_url, SECRET_KEY, sync)
    assert _months(database_url, "raw_tj_files")["2026-05.xlsx"] == 30
    with psycopg.connect(database_url) as conn:
        reasons = conn.execute("SELECT reason FROM sync_quarantine WHERE run_id = %s",
                               (run,)).fetchall()
    assert len(reasons) == 1 and re.match(r"key record_id='2026-05/[0-9A-Z]{18}' appears "
                                          r"twice", reasons[0][0])


def test_sftp_drop(tmp_path, database_url):
    key = tmp_path / "client_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    server = SftpServer(tmp_path / "sshd", free_port())
    server.start(key.with_suffix(".pub").read_text())
    try:
        wait_for(lambda: port_open(server.port), timeout_s=10, what="sshd")
        drop = tmp_path / "remote"
        drop.mkdir()
        for month in ("2026-01", "2026-02"):
            write_month(drop, month)
        settings = {"host": "127.0.0.1", "port": server.port, "user": "root",
                    "path": str(drop), "host_key": server.host_key}
        system = _system(database_url, "tj_sftp")
        sync = _sync(database_url, system, "sftp", settings, key.read_text())
        run_sync(database_url, SECRET_KEY, sync)
        write_month(drop, "2026-03")
        second = run_sync(database_url, SECRET_KEY, sync)
        assert _months(database_url, "raw_tj_sftp") == {
            "2026-01.xlsx": 30, "2026-02.xlsx": 30, "2026-03.xlsx": 30}
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT rows_read FROM sync_runs WHERE id = %s",
                                (second,)).fetchone()[0] == 30  # only the new month
        other = tmp_path / "other_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                       check=True)
        refused = _sync(database_url, system, "sftp", settings, other.read_text(), "sftp-2")
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE syncs SET target_table = 'monthly2' WHERE id = %s", (refused,))
        with pytest.raises(SourceError, match="Permission denied") as err:
            run_sync(database_url, SECRET_KEY, refused)
        assert "PRIVATE KEY" not in err.value.detail
    finally:
        server.stop()
