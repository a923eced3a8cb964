"""`cityops security check` (issue #19 item 6): each 等保 item with what was checked and the
evidence, passing or failing as the platform really is."""

from __future__ import annotations

import json
import subprocess
import sys

from fastapi.testclient import TestClient

from api.main import create_app
from api.security_check import run_checks
from cityops.settings import Settings
from tests.api_kit import api_settings
from tests.conftest import REPO, BrokerFixture, settings_env
from tests.helpers import free_port


def test_the_checklist_reports_each_item_as_the_platform_is(
        settings: Settings, broker: BrokerFixture) -> None:
    strict = api_settings(settings, broker).model_copy(update={
        "password_min_length": 12, "password_min_classes": 3, "api_https": True,
        "totp_required_roles": ["admin", "security_admin", "audit_admin"]})
    with TestClient(create_app(strict), base_url="https://testserver") as client:
        items = {i.id: i for i in run_checks(strict, "https://testserver", client)}
    assert len(items) >= 15 and all(i.requirement and i.checked and i.evidence
                                    for i in items.values())
    for passing in ("8.1.4.1-a", "8.1.4.1-c", "8.1.4.1-e", "8.1.4.3-c", "8.1.4.3-c2",
                    "8.1.4.3-d", "8.1.4.4-a", "8.1.3.1-b"):
        assert items[passing].passed, items[passing]
    assert "UPDATE False, DELETE False, TRUNCATE False" in items["8.1.4.3-c"].evidence
    # the local stack's database takes TCP clients over TLS only (infra/local/postgres.py)
    assert items["8.1.3.1-a"].passed and "ssl True TLSv1" in items["8.1.3.1-a"].evidence


def test_the_command_fails_with_the_suite_s_relaxed_rules(settings: Settings) -> None:
    env = settings_env(settings)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listening: named, not a traceback
    done = subprocess.run([sys.executable, "-m", "cli", "security", "check", "--url", url,
                           "--json"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1, done.stderr
    items = {i["id"]: i for i in json.loads(done.stdout)}
    assert not items["8.1.4.1-a"]["passed"] and "classes 1" in items["8.1.4.1-a"]["evidence"]
    assert not items["8.1.4.1-e"]["passed"]  # the suite turns the second factor off
    assert not items["8.1.4.4"]["passed"] and "ConnectError" in items["8.1.4.4"]["evidence"]
