"""The stack's PostgreSQL cluster takes TCP clients over TLS only (issue #19 item 1): its
certificate is of the stack's local CA, so a client can verify it, and a client that does not
encrypt is refused by pg_hba."""

from __future__ import annotations

import psycopg
import pytest

from cityops.settings import Settings


def test_clients_are_encrypted_and_can_verify_the_server(stack_settings: Settings,
                                                         database_url: str) -> None:
    ca = stack_settings.state_dir / "tls" / "ca.crt"
    verified = f"{database_url}?sslmode=verify-full&sslrootcert={ca}"
    with psycopg.connect(verified) as conn:
        ssl, version = conn.execute("SELECT ssl, version FROM pg_stat_ssl"
                                    " WHERE pid = pg_backend_pid()").fetchone()
    assert ssl and version in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(f"{database_url}?sslmode=disable")


def test_a_client_that_trusts_another_ca_refuses_the_server(database_url: str, tmp_path) -> None:
    from infra.tls.ca import LocalCA

    other = LocalCA(tmp_path / "other").ensure()
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(f"{database_url}?sslmode=verify-full&sslrootcert={other.cert_path}")
