"""`cityops backup` / `cityops restore` against the real cluster: the backup is encrypted, a
restore into a fresh database answers the API with the same data, and a wrong key or an
altered file is refused before any database is made."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.main import create_app
from cityops.errors import ConfigError, InvalidInput
from cityops.settings import Settings
from infra.backup.archive import Superuser, create, with_database
from infra.backup.crypto import CHUNK, DecryptingReader, EncryptingWriter
from infra.backup.restore import restore
from infra.db.admin import drop_database
from tests.api_kit import api_settings, bearer
from tests.conftest import REPO, BrokerFixture, settings_env
from tests.integration.ingest_helpers import register

KEY = secrets.token_urlsafe(48)


def _cityops(settings: Settings, *args: str, key: str | None = KEY
             ) -> subprocess.CompletedProcess:
    env = settings_env(settings) | ({"CITYOPS_BACKUP_KEY": key} if key else {})
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _database_exists(settings: Settings, name: str) -> bool:
    with psycopg.connect(settings.database_admin_url.get_secret_value()) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is not None


def _readings(client: TestClient, headers: dict, device: str) -> list:
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    reply = client.get(f"/v1/devices/{device}/readings", headers=headers,
                       params={"point": "p0", "start": "2020-01-01T00:00:00Z", "end": end})
    assert reply.status_code == 200, reply.text
    return reply.json()["readings"] if "readings" in reply.json() else reply.json()


def test_backup_restores_into_a_fresh_database_that_answers_with_the_same_data(
    settings: Settings, broker: BrokerFixture, database_url: str, tmp_path: Path
) -> None:
    gateway = f"gw-bk-{uuid.uuid4().hex[:6]}"
    device = f"{gateway}-d0"
    (point_id,) = register(database_url, gateway, {device: ["p0"]}).values()
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO readings (time, point_id, value, quality) SELECT now() -"
                     " i * interval '1 minute', %s, i * 1.5, 0 FROM generate_series(1, 500) i",
                     (point_id,))
    headers = bearer(settings, "admin")  # before the backup: the restored users hold it too
    folder = tmp_path / "broker-state"
    folder.mkdir()
    (folder / "acl").write_text(f"user {gateway}\ntopic write cityops/v1/{gateway}/#\n")
    out = tmp_path / "cityops.backup"
    made = _cityops(settings, "backup", str(out), "--folder", str(folder))
    assert made.returncode == 0, made.stderr
    sealed = out.read_bytes()
    assert gateway.encode() not in sealed, "the backup is encrypted (no name in clear)"
    assert out.stat().st_mode & 0o077 == 0, "only its owner may read the backup"

    name = f"cityops_restored_{secrets.token_hex(4)}"
    try:  # the CLI made the backup; the restore runs in process (a second start costs time)
        restored = restore(settings.model_copy(update={"backup_key": SecretStr(KEY)}), out,
                           name, Superuser(), tmp_path / "files")
        assert restored["restored_database"] == name
        (copy,) = (tmp_path / "files").iterdir()
        assert (copy / "acl").read_text() == (folder / "acl").read_text()
        app = api_settings(settings, broker)
        with TestClient(create_app(app)) as client:
            original = _readings(client, headers, device)
        again = app.model_copy(update={"database_url": SecretStr(
            with_database(database_url, name))})
        with TestClient(create_app(again)) as client:
            assert _readings(client, headers, device) == original
            assert len(original) == 500
    finally:
        drop_database(settings.database_admin_url.get_secret_value(), name)


def test_a_wrong_key_or_an_altered_backup_is_refused_before_any_database_is_made(
    settings: Settings, tmp_path: Path
) -> None:
    keyed = settings.model_copy(update={"backup_key": SecretStr(KEY)})
    out = tmp_path / "cityops.backup"
    create(keyed, out, [])
    name = f"cityops_refused_{secrets.token_hex(4)}"
    wrong = keyed.model_copy(update={"backup_key": SecretStr("x" * 40)})
    with pytest.raises(InvalidInput, match="does not decrypt"):
        restore(wrong, out, name, Superuser())
    altered = tmp_path / "altered.backup"
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01
    altered.write_bytes(bytes(data))
    with pytest.raises(InvalidInput, match="does not decrypt"):
        restore(keyed, altered, name, Superuser())
    assert not _database_exists(settings, name)
    with pytest.raises(InvalidInput, match="exists"):
        restore(keyed, out, database_url_name(settings), Superuser())
    with pytest.raises(InvalidInput, match="exists"):
        create(keyed, out, [])
    with pytest.raises(ConfigError, match="CITYOPS_BACKUP_KEY is not set"):
        create(settings.model_copy(update={"backup_key": None}), tmp_path / "b", [])


def database_url_name(settings: Settings) -> str:
    return settings.database_url.get_secret_value().rsplit("/", 1)[1]


@pytest.mark.parametrize("size", [0, 10, CHUNK, CHUNK * 2 + 7])
def test_the_stream_cipher_round_trips_and_detects_a_cut(tmp_path: Path, size: int) -> None:
    plain = secrets.token_bytes(size)
    path = tmp_path / "s"
    with path.open("wb") as sink:
        writer = EncryptingWriter(sink, KEY)
        writer.write(plain)
        writer.close()
    with path.open("rb") as source:
        assert DecryptingReader(source, KEY).read() == plain
    cut = path.read_bytes()[:-20]
    path.write_bytes(cut)
    with path.open("rb") as source, pytest.raises(InvalidInput):
        DecryptingReader(source, KEY).read()


def test_superuser_of_the_local_stack_is_postgres_over_the_socket() -> None:
    argv = Superuser().argv("psql", "db")
    assert argv[:4] == ["runuser", "-u", "postgres", "--"] and "-h" in argv
    assert Superuser("postgresql://a@h1:1,h2:2/x?sslmode=require").argv("psql", "db")[-1] == (
        "postgresql://a@h1:1,h2:2/db?sslmode=require")
