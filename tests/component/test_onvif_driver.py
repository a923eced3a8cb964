"""The ONVIF driver against the ONVIF camera simulator over real HTTP: what the camera is,
its media URIs, motion from PullPoint events, PTZ presets and snapshots as methods, and the
bad cases (refused password, no snapshot, no events, no camera) as clear DeviceErrors."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from datetime import UTC, datetime, timedelta

import pytest

from cityops.errors import DeviceAuthRefused, DeviceRejected, DeviceUnreachable
from edge_agents.drivers.onvif.config import OnvifEndpoint
from edge_agents.drivers.onvif.driver import OnvifDriver, public_uri
from edge_agents.profiles import load_profile
from simulators.onvif.server import MAX_SUBSCRIPTIONS, CameraState, OnvifCameraSimulator
from tests.helpers import await_for, free_port, stop_task

PASSWORD = "Cam-pass-7"


@pytest.fixture
async def camera():
    sim = OnvifCameraSimulator({"admin": PASSWORD})
    await sim.start()
    yield sim
    await sim.stop()


def _driver(port: int, monkeypatch, password: str = PASSWORD, **endpoint) -> OnvifDriver:
    monkeypatch.setenv("CAM_TEST_PASSWORD", password)
    ep = OnvifEndpoint.model_validate({"protocol": "onvif", "host": "127.0.0.1", "port": port,
                                       "username": "admin", "password_env": "CAM_TEST_PASSWORD",
                                       "pull_timeout_s": 0.5, **endpoint})
    return OnvifDriver("cam-1", load_profile("security/onvif_camera"), ep, timeout_s=3,
                       poll_interval_s=0.2)


@contextlib.asynccontextmanager
async def subscribed(driver: OnvifDriver):
    got: dict = {}
    task = asyncio.create_task(driver.subscribe(lambda rs: got.update({r.point: r for r in rs})))
    try:
        yield got
    finally:
        await stop_task(task)
        await driver.close()


async def test_camera_is_read_events_arrive_and_methods_work(camera, monkeypatch) -> None:
    driver = _driver(camera.port, monkeypatch)
    await driver.connect()
    async with subscribed(driver) as got:
        await await_for(lambda: _true("tamper" in got), what="the initial event states")
        assert got["online"].value is True
        assert (got["manufacturer"].value, got["serial_number"].value) == ("CityOps", "SIM0001")
        assert got["media_profiles"].value == 2
        assert got["stream_uri"].value == "rtsp://127.0.0.1:554/Streaming/main"
        assert got["snapshot_uri"].value.endswith("/onvif/snapshot.jpg")
        assert (got["motion"].value, got["tamper"].value) == (False, False)

        camera.set_event("motion", True)
        await await_for(lambda: _true(got["motion"].value is True), what="motion")
        assert got["motion"].quality.value == "good"

        goto = driver.profile.method("goto_preset")
        assert await driver.call(goto, {"preset": "square"}) == "2"  # by name
        assert camera.state.current_preset == "2"
        assert await driver.call(goto, {"preset": "1"}) == "1"  # by token
        with pytest.raises(DeviceRejected, match=r"no PTZ preset 'roof' \(presets: 1 \(gate\)"):
            await driver.call(goto, {"preset": "roof"})

        image = await driver.call(driver.profile.method("snapshot"), {})
        assert isinstance(image, str) and image.startswith("data:image/jpeg;base64,")
        assert base64.b64decode(image.split(",", 1)[1]) == camera.jpeg
    assert "PullMessages" in camera.calls and "GotoPreset" in camera.calls


async def test_wrong_password_is_a_clear_device_error_without_the_password(
        camera, monkeypatch) -> None:
    driver = _driver(camera.port, monkeypatch, password="guessed-wrong")
    with pytest.raises(DeviceAuthRefused) as refused:
        await driver.connect()
    await driver.close()
    assert "refused the user or password" in refused.value.detail
    assert "guessed-wrong" not in refused.value.detail
    assert refused.value.context["retry_after_s"] >= 30  # the agent does not hammer it


async def test_basic_auth_snapshot_and_a_camera_without_snapshot_or_events(monkeypatch) -> None:
    sim = OnvifCameraSimulator({"admin": PASSWORD}, CameraState(snapshot=False, events=False),
                               basic_snapshot=True)
    await sim.start()
    try:
        driver = _driver(sim.port, monkeypatch, snapshot_auth="basic")
        await driver.connect()
        async with subscribed(driver) as got:
            await await_for(lambda: _true("tamper" in got), what="first readings")
            # what the camera lacks reads bad; the rest reads on
            assert got["snapshot_uri"].quality.value == "bad"
            assert got["motion"].quality.value == "bad" and got["motion"].value is None
            assert got["stream_uri"].quality.value == "good"
            with pytest.raises(DeviceRejected, match="snapshots are not offered"):
                await driver.call(driver.profile.method("snapshot"), {})
            sim.state.snapshot = True  # basic auth, when the endpoint asks for it
            image = await driver.call(driver.profile.method("snapshot"), {})
            assert base64.b64decode(image.split(",", 1)[1]) == sim.jpeg
            calls = len(sim.calls)  # without events it checks the camera each poll interval
            await await_for(lambda: _true(len(sim.calls) > calls + 1), what="health checks")
    finally:
        await sim.stop()


async def test_no_camera_is_unreachable(monkeypatch) -> None:
    driver = _driver(free_port(), monkeypatch)
    with pytest.raises(DeviceUnreachable, match=r"cam-1 \(127\.0\.0\.1:\d+\)"):
        await driver.connect()
    await driver.close()



async def test_the_subscription_is_renewed_and_given_back(camera, monkeypatch) -> None:
    driver = _driver(camera.port, monkeypatch)
    for _ in range(MAX_SUBSCRIPTIONS + 1):  # more reconnects than the camera has slots
        await driver.connect()
        (subscription,) = camera.subscriptions.values()
        await driver._session.renew(600)
        assert subscription.terminate_at > datetime.now(UTC) + timedelta(seconds=500)
        await driver.close()
        assert camera.subscriptions == {}


def test_uris_lose_the_credentials_some_cameras_put_in_them() -> None:
    assert public_uri("rtsp://admin:Cam-pass-7@10.0.0.5:554/Streaming/101") == \
        "rtsp://10.0.0.5:554/Streaming/101"
    assert public_uri("http://u:p@w@cam.local/snap.jpg?x=1") == "http://cam.local/snap.jpg?x=1"
    assert public_uri("rtsp://10.0.0.5/main") == "rtsp://10.0.0.5/main"


async def test_a_camera_clock_hours_off_needs_adjust_time(monkeypatch) -> None:
    sim = OnvifCameraSimulator({"admin": PASSWORD}, CameraState(clock_offset_s=3 * 3600))
    await sim.start()
    try:
        stale = _driver(sim.port, monkeypatch)
        with pytest.raises(DeviceAuthRefused):  # its clock calls our Created time stale
            await stale.connect()
        await stale.close()
        adjusted = _driver(sim.port, monkeypatch, adjust_time=True)
        await adjusted.connect()
        assert (await adjusted.read())[1].value == "CityOps"
        await adjusted.close()
    finally:
        await sim.stop()


async def test_an_older_camera_without_get_services(monkeypatch) -> None:
    sim = OnvifCameraSimulator({"admin": PASSWORD}, CameraState(get_services=False))
    await sim.start()
    try:
        driver = _driver(sim.port, monkeypatch)
        await driver.connect()  # its services come from GetCapabilities
        async with subscribed(driver) as got:
            await await_for(lambda: _true("tamper" in got), what="readings and events")
            assert got["stream_uri"].quality.value == got["motion"].quality.value == "good"
            assert await driver.call(driver.profile.method("goto_preset"), {"preset": "gate"})
        assert "GetCapabilities" in sim.calls
    finally:
        await sim.stop()


async def test_a_camera_that_goes_away_ends_the_subscription_with_device_unreachable(
        monkeypatch) -> None:
    sim = OnvifCameraSimulator({"admin": PASSWORD})
    await sim.start()
    driver = _driver(sim.port, monkeypatch)
    await driver.connect()
    got: dict = {}
    task = asyncio.create_task(driver.subscribe(lambda rs: got.update({r.point: r for r in rs})))
    await await_for(lambda: _true("tamper" in got), what="first readings")
    await sim.stop()  # the agent's runner then marks the camera offline and reconnects
    with pytest.raises(DeviceUnreachable, match=r"cam-1 \(127\.0\.0\.1:\d+\) PullMessages"):
        await asyncio.wait_for(task, 10)
    await driver.close()


async def _true(value: bool) -> bool:
    return value
