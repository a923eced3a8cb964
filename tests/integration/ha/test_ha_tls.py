"""The HA cluster takes TLS only (hostssl), its replication runs over TLS, and clients verify
its certificate against the local CA (sslmode=verify-full in the services' URL)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from infra.tls.ca import LocalCA
from tests.integration.ha.conftest import HaFixture


def test_the_cluster_takes_tls_only_and_clients_verify_its_certificate(
    ha: HaFixture, tmp_path: Path
) -> None:
    assert "sslmode=verify-full" in ha.url
    ha.cluster.wait_synchronous(60)
    with psycopg.connect(ha.url) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                            ).fetchone()[0] is True
    with psycopg.connect(ha.cluster.superuser_url()) as conn:  # walsenders: the superuser's
        streams = conn.execute("SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s"
                               " USING (pid)").fetchall()
        assert streams == [(True,)], "the standby replicates over TLS"
    plain = ha.url.replace("sslmode=verify-full", "sslmode=disable")
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(plain)
    other = LocalCA(tmp_path / "other").ensure()
    wrong = re.sub(r"sslrootcert=[^&]+", f"sslrootcert={other.cert_path}", ha.url)
    with pytest.raises(psycopg.OperationalError, match="SSL error"):
        psycopg.connect(wrong)
