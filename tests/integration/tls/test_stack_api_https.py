"""`cityops api` started from the settings `cityops stack up` writes (local.env made in a
temporary state folder, never the shared var/): it serves HTTPS with the local CA's
certificate, its plain port only redirects, and a client verifying with CITYOPS_API_CA_FILE
(as the in-repo clients do) is served while one without that CA is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cityops.settings import Settings
from cityops.tls import api_base_url, api_client_context
from infra.local import stack
from tests.conftest import REPO, Processes, settings_env
from tests.helpers import free_port, port_open, wait_for


def test_a_stack_made_settings_file_gives_an_https_api_whose_http_port_redirects(
    settings: Settings, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    stack.write_env(state / "local.env", stack._local_env({}, state))
    made = stack.read_env(state / "local.env")
    https, http = free_port(), free_port()  # the stack's 8443/8080 may be the demo's
    api_keys = {k: v for k, v in made.items() if k.startswith("CITYOPS_API_")
                and "MQTT" not in k} | {"CITYOPS_API_PORT": str(https),
                                        "CITYOPS_API_HTTP_REDIRECT_PORT": str(http)}
    processes = Processes(tmp_path, settings_env(settings) | api_keys)
    client_settings = Settings(_env_file=None, **{
        k.removeprefix("CITYOPS_").lower(): v for k, v in api_keys.items()})
    base = api_base_url(client_settings)
    assert base == f"https://127.0.0.1:{https}"
    try:
        processes.start("api", "api")
        wait_for(lambda: port_open(https) and port_open(http), timeout_s=60,
                 what="the API's HTTPS and redirect ports")
        with httpx.Client(verify=api_client_context(client_settings), timeout=10) as client:
            reply = client.get(f"{base}/v1/health")
            assert reply.status_code in (200, 503) and "database" in reply.json()["checks"]
            assert "max-age" in reply.headers["strict-transport-security"]
            moved = client.get(f"http://localhost:{http}/v1/health?x=1")
            assert moved.status_code == 308
            assert moved.headers["location"] == f"https://localhost:{https}/v1/health?x=1"
            followed = client.get(f"http://127.0.0.1:{http}/v1/health", follow_redirects=True)
            assert followed.url == f"{base}/v1/health" and "checks" in followed.json()
        with httpx.Client(timeout=10) as untrusting, pytest.raises(httpx.ConnectError,
                                                                   match="CERTIFICATE_VERIFY"):
            untrusting.get(f"{base}/v1/health")  # the system's CAs do not know the local CA
        # an in-repo client of the API from the same settings: `cityops security check`
        # finds it at https://127.0.0.1:<port> and verifies it with CITYOPS_API_CA_FILE
        checked = subprocess.run([sys.executable, "-m", "cli", "security", "check", "--json"],
                                 cwd=REPO, env=processes.env, capture_output=True, text=True,
                                 timeout=60, check=False)
        items = {i["id"]: i for i in json.loads(checked.stdout)}
        assert "8.1.4.4" not in items, items.get("8.1.4.4")  # reached and verified
        assert items["8.1.3.1-b"]["passed"], items["8.1.3.1-b"]
    finally:
        processes.stop_all()
