"""Real agent processes against a server with one session slot (issue #13 items 3 and 6):
killed with -9 an agent cannot close its session, which holds the slot; restarted, it takes
that session back and closes it at once (not after the 60 s timeout it asked for); stopped
normally it closes its session; a session nobody comes back for ends after the client's
`session_timeout_s`; and at INFO the agent logs none of asyncua's per-request chatter."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from cityops.errors import DeviceUnreachable
from edge_agents.drivers.opcua.driver import OpcUaDriver
from edge_agents.profiles import load_profile
from tests.component.test_opcua_driver import endpoint, simulator
from tests.conftest import REPO, BrokerFixture
from tests.helpers import await_for, free_port

GATEWAY = f"gw-sessions-{uuid.uuid4().hex[:6]}"
PROFILE = load_profile("av/video_wall")


def _agent(tmp_path: Path, broker: BrokerFixture, port: int, name: str) -> subprocess.Popen:
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({
        "gateway": GATEWAY, "broker": {"url": broker.url},
        "queue": {"path": str(tmp_path / "queue.db")},
        "devices": [{"id": "wall", "profile": "av/video_wall", "timeout_s": 2, "endpoint": {
            "protocol": "opcua", "url": f"opc.tcp://127.0.0.1:{port}/cityops/",
            "session_timeout_s": 60, "watchdog_interval_s": 1, "publishing_interval_ms": 100}}],
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYOPS_")}
    env |= {"CITYOPS_ENV_FILE": "/nonexistent", "CITYOPS_STATE_DIR": str(tmp_path),
            "CITYOPS_LOG_LEVEL": "INFO", "CITYOPS_GATEWAY_PASSWORD": _password(broker)}
    with (tmp_path / f"{name}.log").open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "cli", "agent", "--config", str(config)],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def _password(broker: BrokerFixture, saved: dict[str, str] = {}) -> str:  # noqa: B006
    if GATEWAY not in saved:  # the broker lives for the whole test session
        saved[GATEWAY] = broker.add_gateway(GATEWAY)
    return saved[GATEWAY]


async def test_a_killed_agents_session_is_reclaimed_a_stopped_one_closed_an_abandoned_one_ends(
        tmp_path: Path, broker: BrokerFixture) -> None:
    port = free_port()
    async with simulator(PROFILE, port, max_sessions=1,
                         min_session_timeout_s=1) as sim:
        first = _agent(tmp_path, broker, port, "first")
        try:
            await await_for(lambda: _true(sim.subscriptions() == 1), timeout_s=30,
                            what="the first agent's subscription")
        finally:
            first.kill()  # kill -9: no CloseSession; the session outlives its socket
            first.wait(10)
        assert sim.sessions() == 1
        # meanwhile the server is full, and says so: the device's reason names it
        full = OpcUaDriver("wall", PROFILE, endpoint(port), timeout_s=2)
        with pytest.raises(DeviceUnreachable, match=r"no free session \(BadTooManySessions\)"):
            await full.connect()
        second = _agent(tmp_path, broker, port, "second")
        try:
            await await_for(lambda: _true(sim.sessions_created == 2 and sim.subscriptions() == 1),
                            timeout_s=30, what="the restarted agent to get the only slot")
        finally:
            second.terminate()  # the server answers its CloseSession in this loop: no blocking
            await asyncio.to_thread(second.wait, 10)
        assert sim.sessions() == 0, "a stopped agent closes its session"
        await _abandoned_session_ends(sim, port)
    assert "closed the session a previous run left open" in (tmp_path / "second.log").read_text()
    logs = "".join((tmp_path / f"{n}.log").read_text() for n in ("first", "second"))
    assert f" INFO edge_agents.agent: gateway {GATEWAY}" in logs  # our INFO lines are there
    assert not re.findall(r" INFO asyncua\S*:", logs), "no library chatter at INFO"


async def _abandoned_session_ends(sim, port: int) -> None:
    """A client gone without CloseSession and without a session file to come back with."""
    driver = OpcUaDriver("wall", PROFILE, endpoint(port, session_timeout_s=2), timeout_s=2)
    await driver.connect()
    task = asyncio.create_task(driver.subscribe(lambda _readings: None))
    await await_for(lambda: _true(sim.subscriptions() == 1), what="a subscription")
    driver._client.disconnect_socket()  # type: ignore[union-attr]  # as if killed
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, DeviceUnreachable):
        await task
    assert sim.sessions() == 1  # it outlives its socket...
    await await_for(lambda: _true(sim.sessions() == 0), timeout_s=10,
                    what="the session to end after session_timeout_s")  # ...for 2 s
    await driver.close()


async def _true(value: bool) -> bool:
    return value
