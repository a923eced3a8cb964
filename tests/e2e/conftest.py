"""The console in a real browser: Debian's chromium driven by Playwright, against real processes
started once for the folder and stopped after it, before the rest of the suite shares the
session's database and broker (simulated video wall, amplifier, matrix and UPS; an agent; an
ingest worker; the API serving the built console), with people of each role.

Screenshots go to the session's tmp folder; with CITYOPS_E2E_DOCS_SCREENSHOTS=1 the main ones
are also copied to docs/screenshots/ (so an ordinary test run leaves the tree clean).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.sync_api import Browser, Page, expect, sync_playwright

from cityops.settings import Settings
from tests.conftest import REPO, BrokerFixture, Processes, settings_env
from tests.e2e import seed
from tests.helpers import free_port, port_open, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1600, "height": 900}
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"
ROLES = ("admin", "operator", "viewer", "dispatcher", "department_staff", "ops_engineer")


@dataclass
class Console:
    url: str
    gateway: str
    devices: dict[str, str]
    users: dict[str, tuple[str, str]]  # role -> (username, password)
    admin: httpx.Client
    screens: Path
    facts: dict = field(default_factory=dict)

    def client(self, role: str) -> httpx.Client:
        name, password = self.users[role]
        client = httpx.Client(base_url=self.url, timeout=10)
        token = client.post("/v1/auth/token", data={"username": name, "password": password})
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        return client


def _build_console() -> None:
    """The console under test is the current source: rebuilt when stale (the build half of
    `make web`, without its package installation, which needs root)."""
    result = subprocess.run(["make", "-s", "api/web/dist/.built"], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"building the console failed:\n{result.stdout}\n{result.stderr}"
    assert (REPO / "api" / "web" / "dist" / "index.html").is_file()


def _agent_config(gateway: str, broker: BrokerFixture, ports: dict[str, int],
                  queue: Path) -> dict:
    def modbus(port: int) -> dict:
        return {"host": "127.0.0.1", "port": port, "unit_id": 1}

    av = {"site": "command-centre", "department": "urban-management", "poll_interval_s": 0.5}
    return {
        "gateway": gateway, "site": "command-centre", "department": "urban-management",
        "broker": {"url": broker.url}, "status_interval_s": 1,
        "queue": {"path": str(queue), "batch_max_wait_ms": 100},
        "devices": [
            {"id": f"{gateway}-wall", "title": "大屏控制器", "profile": "av/video_wall", **av,
             "endpoint": {"protocol": "opcua",
                          "url": f"opc.tcp://127.0.0.1:{ports['wall']}/cityops/"}},
            {"id": f"{gateway}-audio", "title": "会商厅功放", "profile": "av/audio_dsp", **av,
             "endpoint": modbus(ports["audio"])},
            {"id": f"{gateway}-matrix", "title": "视频矩阵", "profile": "av/matrix_switcher",
             **av, "endpoint": modbus(ports["matrix"])},
            {"id": f"{gateway}-ups", "title": "机房UPS", "profile": "power/ups",
             "department": "emergency-management", "poll_interval_s": 0.5,
             "endpoint": modbus(ports["ups"])},
        ],
    }


def _start_devices(processes: Processes) -> dict[str, int]:
    ports = {name: free_port() for name in ("wall", "audio", "matrix", "ups")}
    processes.start("sim-wall", "sim", "opcua", "--profile", "av/video_wall",
                    "--port", str(ports["wall"]), "--tick-s", "0.5")
    for name, profile in (("audio", "av/audio_dsp"), ("matrix", "av/matrix_switcher"),
                          ("ups", "power/ups")):
        processes.start(f"sim-{name}", "sim", "modbus", "--profile", profile,
                        "--port", str(ports[name]), "--tick-s", "0.5")
    for port in ports.values():
        wait_for(lambda p=port: port_open(p), timeout_s=30, what="a device simulator")
    return ports


def _rules(gateway: str) -> dict:
    """Two alarms that stand while the simulators run: something to acknowledge."""
    return {"rules": [
        {"id": f"{gateway}-amp-hot", "title": "功放温度高", "kind": "threshold",
         "severity": "major", "target": {"devices": [f"{gateway}-audio"],
                                          "point": "amplifier_temperature_c"},
         "above": 30, "clear": 20},
        {"id": f"{gateway}-wall-hot", "title": "大屏控制器温度高", "kind": "threshold",
         "severity": "minor", "target": {"devices": [f"{gateway}-wall"],
                                          "point": "temperature_c"},
         "above": 30, "clear": 20},
    ]}


@pytest.fixture(scope="package")
def console(settings: Settings, broker: BrokerFixture, database_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    _build_console()
    work = tmp_path_factory.mktemp("console")
    processes = Processes(work, settings_env(settings))
    try:
        gateway = f"gw-ui-{uuid.uuid4().hex[:6]}"
        ports = _start_devices(processes)
        (work / "gw.yaml").write_text(yaml.safe_dump(
            _agent_config(gateway, broker, ports, work / "queue.db"), allow_unicode=True))
        (work / "rules.yaml").write_text(yaml.safe_dump(_rules(gateway), allow_unicode=True))
        password = broker.add_gateway(gateway)
        processes.run("registry", "load", str(work / "gw.yaml"))
        processes.run("rules", "load", str(work / "rules.yaml"))
        admin = (f"admin-{gateway[-6:]}", secrets.token_urlsafe(12))
        processes.run("users", "add", admin[0], "--role", "admin", stdin=admin[1] + "\n")
        processes.start("agent", "agent", "--config", str(work / "gw.yaml"),
                        env=processes.env | {"CITYOPS_GATEWAY_PASSWORD": password})
        processes.start("ingest", "ingest")
        api_port = free_port()
        # the broker's own state: registering a gateway from the console issues its account
        processes.start("api", "api", "--port", str(api_port), env=processes.env | {
            "CITYOPS_BROKER_STATE_DIR": str(broker.broker.state_dir)})
        wait_for(lambda: port_open(api_port), timeout_s=60, what="the API")
        url = f"http://127.0.0.1:{api_port}"
        client = httpx.Client(base_url=url, timeout=10)
        token = client.post("/v1/auth/token", data={"username": admin[0], "password": admin[1]})
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        users = {"admin": admin, **seed.users(client, gateway[-6:])}
        devices = {k: f"{gateway}-{k}" for k in ("wall", "audio", "matrix", "ups")}
        screens = tmp_path_factory.mktemp("screenshots")
        ready = Console(url, gateway, devices, users, client, screens)
        seed.wait_online(client, gateway, list(devices.values()))
        yield ready
    finally:
        processes.stop_all()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[FAILED] = report.failed


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Browser, console: Console, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, base_url=console.url, locale="zh-CN")
    context.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)  # a loaded machine: the same patience for assertions
    one = context.new_page()
    yield one
    if request.node.stash.get(FAILED, False):  # what the browser showed when it failed
        one.screenshot(path=str(console.screens / f"FAILED-{request.node.name}.png"),
                       full_page=True)
    context.close()


def login(page: Page, console: Console, role: str, path: str = "/") -> None:
    name, password = console.users[role]
    page.goto(path)
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("form[data-test=login] button.primary")
    page.wait_for_selector("header.topbar")


def shoot(page: Page, console: Console, name: str) -> Path:
    """A screenshot in the session's folder, and in docs/screenshots/ when asked for."""
    path = console.screens / f"{name}.png"
    page.screenshot(path=str(path))
    if os.environ.get("CITYOPS_E2E_DOCS_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_SCREENSHOTS / path.name)
    return path


@pytest.fixture(scope="package")
def city_events(console: Console) -> list[int]:
    """The seeded events' ids, in seed.EVENTS order (reported, dispatched to water resources,
    processing, registered, feedback, closed)."""
    return seed.events(console.client("dispatcher"), console.client("department_staff"))
