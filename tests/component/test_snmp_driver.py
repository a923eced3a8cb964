"""The SNMP driver against Debian's real Net-SNMP `snmpd` (v2c and v3 authPriv, its own
interface table and HOST-RESOURCES-MIB), and notifications sent by Net-SNMP's `snmptrap` and
`snmpinform` to the driver's receiver."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator

import pytest

from cityops.errors import DeviceAuthRefused, DeviceUnreachable
from edge_agents.config import DeviceConfig
from edge_agents.driver import DriverFactory
from edge_agents.profiles import load_profile, parse_profile
from tests.component.snmp_kit import V3_USER, Snmpd, free_udp_port, running_snmpd
from tests.helpers import await_for, stop_task

SENDER_ENGINE = "0x80001f8880c1d2e3f4a5b6"  # a v3 trap is sent under the sender's engine id
LINK_DOWN, LINK_UP, IF_INDEX = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1"


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    with running_snmpd(tmp_path_factory) as agent:
        yield agent


def _device(endpoint: dict, poll_interval_s: float = 0.3) -> DeviceConfig:
    return DeviceConfig.model_validate({"id": "sw-1", "profile": "x", "timeout_s": 1,
                                        "poll_interval_s": poll_interval_s,
                                        "endpoint": {"protocol": "snmp", **endpoint}})


def _v2c(agent: Snmpd, **extra: object) -> dict:
    os.environ["CITYOPS_TEST_SNMP_COMMUNITY"] = agent.community
    return {"host": "127.0.0.1", "port": agent.port,
            "community": {"env": "CITYOPS_TEST_SNMP_COMMUNITY"}, **extra}


def _v3(agent: Snmpd, auth_key: str | None = None) -> dict:
    os.environ["CITYOPS_TEST_SNMP_AUTH"] = auth_key or agent.auth_key
    os.environ["CITYOPS_TEST_SNMP_PRIV"] = agent.priv_key
    return {"host": "127.0.0.1", "port": agent.port, "version": "3",
            "user": {"username": V3_USER, "auth_protocol": "SHA", "priv_protocol": "AES",
                     "auth_key": {"env": "CITYOPS_TEST_SNMP_AUTH"},
                     "priv_key": {"env": "CITYOPS_TEST_SNMP_PRIV"}}}


async def test_v2c_reads_the_real_interface_table_and_host_resources(snmpd: Snmpd) -> None:
    profile = load_profile("network/snmp_switch")
    driver = DriverFactory().create(_device(_v2c(snmpd)), profile)
    await driver.connect()
    names = {p.name for p in profile.points}

    async def every_point() -> dict | None:  # rates from half a poll interval after connect
        got = {r.point: r for r in await driver.read()}
        return got if set(got) == names else None

    try:
        got = await await_for(every_point, timeout_s=10, what="every point, rates included")
        assert got["port1.name"].value == "lo"  # Linux numbers lo 1
        assert got["port1.oper_up"].value is True and got["port1.admin_up"].value is True
        assert got["sys_name"].value and got["uptime_s"].value > 0
        assert 0 < got["memory_used_pct"].value < 100
        # snmpd's ifTable is the kernel's: ifIndex = ifindex. Rows the host lacks read bad,
        # the rest read on
        host = dict(socket.if_nameindex())
        for row in range(1, 25):
            name = got[f"port{row}.name"]
            assert (name.value, name.quality.value) == (
                (host[row], "good") if row in host else (None, "bad")), row
        assert got["poe_power_w"].quality.value == "bad"  # Net-SNMP has no POWER-ETHERNET-MIB
        assert got["port1.neighbor"].value == ""  # nor LLDP-MIB: no neighbour, not an error

        # snmpd fills hrProcessorTable only after a minute of CPU samples: until then the
        # point reads bad (no row to reduce), then a load in percent
        cpu = got["cpu_load_pct"]
        assert cpu.quality.value == "bad" if cpu.value is None else 0 <= cpu.value <= 100

        async def traffic() -> bool:  # SNMP over loopback is itself lo's traffic
            now = {r.point: r.value for r in await driver.read()}
            return now["port1.in_bps"] > 0 and now["port1.out_bps"] > 0

        await await_for(traffic, timeout_s=15, interval_s=0.5, what="lo's bit rate")
    finally:
        await driver.close()


async def test_v3_auth_priv_reads_and_a_wrong_key_is_refused(snmpd: Snmpd) -> None:
    profile = load_profile("network/snmp_switch")
    driver = DriverFactory().create(_device(_v3(snmpd)), profile)
    await driver.connect()
    got = {r.point: r.value for r in await driver.read()}
    assert got["port1.name"] == "lo"
    await driver.close()
    wrong = DriverFactory().create(_device(_v3(snmpd, auth_key="not-the-key-1")), profile)
    with pytest.raises(DeviceAuthRefused, match="refused the credentials"):
        await wrong.connect()
    await wrong.close()


async def test_missing_hc_counter_falls_back_and_silence_is_unreachable(snmpd: Snmpd) -> None:
    profile = parse_profile({
        "model": "t-fallback", "category": "network", "protocol": "snmp",
        "points": [{"name": "in_bps", "data_type": "float64", "scale": 8, "address": {
            "oid": "1.3.6.1.2.1.31.1.1.1.6.999", "fallback": "1.3.6.1.2.1.2.2.1.10.1",
            "rate": True}}]}, "t")
    driver = DriverFactory().create(_device(_v2c(snmpd)), profile)
    await driver.connect()

    async def rate() -> bool:
        return [r.quality.value for r in await driver.read()] == ["good"]

    await await_for(rate, timeout_s=10, interval_s=0.3, what="the 32-bit fallback's rate")
    await driver.close()
    silent = DriverFactory().create(_device(_v2c(snmpd, port=free_udp_port())), profile)
    with pytest.raises(DeviceUnreachable, match="no answer"):
        await silent.connect()
    await silent.close()


async def test_traps_and_informs_become_readings(snmpd: Snmpd) -> None:
    profile = load_profile("network/snmp_switch")
    trap_port = free_udp_port()
    os.environ["CITYOPS_TEST_TRAP_COMMUNITY"] = "trap-" + snmpd.community
    endpoint = _v2c(snmpd, traps={
        "host": "127.0.0.1", "port": trap_port,
        "community": {"env": "CITYOPS_TEST_TRAP_COMMUNITY"},
        "users": [{"username": "trapper", "auth_key": {"env": "CITYOPS_TEST_SNMP_AUTH"},
                   "priv_key": {"env": "CITYOPS_TEST_SNMP_PRIV"}, "engine_id": SENDER_ENGINE}]})
    os.environ["CITYOPS_TEST_SNMP_AUTH"] = snmpd.auth_key
    os.environ["CITYOPS_TEST_SNMP_PRIV"] = snmpd.priv_key
    driver = DriverFactory().create(_device(endpoint, poll_interval_s=30), profile)
    assert driver.pushes
    await driver.connect()
    seen: list = []
    task = asyncio.create_task(driver.subscribe(seen.extend))
    try:
        await await_for(lambda: _true(len(seen) > 0), what="the first poll")
        # rows whose link the polls do not show up (absent or down): there only a linkUp
        # notification can make oper_up true
        quiet = [str(r) for r in range(2, 25) if True not in _values(seen, f"port{r}.oper_up")]
        assert len(quiet) >= 3, quiet
        seen.clear()
        wrong = await asyncio.to_thread(  # a community the receiver does not know: dropped
            snmpd.tool, "snmptrap", "-v2c", "-c", "not-" + snmpd.community,
            f"127.0.0.1:{trap_port}", "", LINK_UP, f"{IF_INDEX}.{quiet[0]}", "i", quiet[0])
        assert wrong.returncode == 0, wrong.stderr
        sent = await asyncio.to_thread(
            snmpd.tool, "snmptrap", "-v2c", "-c", "trap-" + snmpd.community,
            f"127.0.0.1:{trap_port}", "", LINK_DOWN, f"{IF_INDEX}.1", "i", "1")
        assert sent.returncode == 0, sent.stderr
        # lo is up: only the trap can say port1 is down
        await await_for(lambda: _true(False in _values(seen, "port1.oper_up")), timeout_s=10,
                        what="linkDown as port1.oper_up false")
        # the wrong community's trap was sent first, to the same socket: handled by now
        assert True not in _values(seen, f"port{quiet[0]}.oper_up")
        # an inform over v3 authPriv: snmpinform exits 0 only once the driver acknowledged it
        seen.clear()
        sent = await asyncio.to_thread(
            snmpd.tool, "snmpinform", "-v3", "-l", "authPriv", "-u", "trapper", "-a", "SHA",
            "-A", snmpd.auth_key, "-x", "AES", "-X", snmpd.priv_key, "-t", "2", "-r", "1",
            f"127.0.0.1:{trap_port}", "", LINK_UP, f"{IF_INDEX}.{quiet[1]}", "i", quiet[1])
        assert sent.returncode == 0, sent.stderr
        await await_for(lambda: _true(True in _values(seen, f"port{quiet[1]}.oper_up")),
                        timeout_s=10, what="linkUp (inform) as oper_up true")
        # a v3 authPriv trap (unacknowledged), under the engine id the config names
        sent = await asyncio.to_thread(
            snmpd.tool, "snmptrap", "-v3", "-e", SENDER_ENGINE, "-l", "authPriv", "-u",
            "trapper", "-a", "SHA", "-A", snmpd.auth_key, "-x", "AES", "-X", snmpd.priv_key,
            f"127.0.0.1:{trap_port}", "", LINK_UP, f"{IF_INDEX}.{quiet[2]}", "i", quiet[2])
        assert sent.returncode == 0, sent.stderr
        await await_for(lambda: _true(True in _values(seen, f"port{quiet[2]}.oper_up")),
                        timeout_s=10, what="linkUp (v3 trap) as oper_up true")
    finally:
        await stop_task(task)
        await driver.close()


def _values(readings: list, point: str) -> list:
    return [r.value for r in readings if r.point == point]


async def _true(value: bool) -> bool:
    return value
