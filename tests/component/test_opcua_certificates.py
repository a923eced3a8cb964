"""The agent's own certificate on a Basic256Sha256 endpoint (issue #13 item 4): made once with
a key only its owner reads when both files are missing; a supplied one never replaced, refused
with the reason when it cannot work; files read as PEM or DER by content, whatever the name."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cityops.errors import DeviceConfigInvalid
from edge_agents.drivers.opcua import certs
from edge_agents.drivers.opcua.driver import OpcUaDriver
from edge_agents.profiles import load_profile
from tests.component.test_opcua_driver import endpoint, simulator
from tests.helpers import free_port

PROFILE = load_profile("av/video_wall")


@pytest.fixture(scope="module")
async def sim(tmp_path_factory):
    port = free_port()
    async with simulator(PROFILE, port, secure_dir=tmp_path_factory.mktemp("server")) as server:
        yield server


def _driver(sim, cert: Path, key: Path) -> OpcUaDriver:
    ep = endpoint(sim.port, security_policy="Basic256Sha256", security_mode="Sign", mode="poll",
                  certificate=str(cert), private_key=str(key), auth_retry_s=90)
    return OpcUaDriver("wall", PROFILE, ep, timeout_s=4)


async def _reads(driver: OpcUaDriver) -> bool:
    await driver.connect()
    try:
        return "power_on" in {r.point for r in await driver.read()}
    finally:
        await driver.close()


async def test_a_missing_pair_is_made_once_with_a_key_only_the_owner_reads(sim, tmp_path) -> None:
    cert, key = tmp_path / "agent-cert.der", tmp_path / "agent-key.pem"
    assert await _reads(_driver(sim, cert, key))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    made = cert.read_bytes(), key.read_bytes()
    assert await _reads(_driver(sim, cert, key))
    assert (cert.read_bytes(), key.read_bytes()) == made, "made once, then reused"


async def test_a_supplied_certificate_that_cannot_work_is_refused_never_replaced(
        sim, tmp_path) -> None:
    cert, key = tmp_path / "agent-cert.der", tmp_path / "agent-key.pem"
    certs.create(cert, key, "urn:someone:else")  # the operator's pair, for another URI
    supplied = cert.read_bytes(), key.read_bytes()
    with pytest.raises(DeviceConfigInvalid) as refused:
        await _driver(sim, cert, key).connect()
    assert "is for application URI ['urn:someone:else']" in refused.value.detail
    assert "'urn:cityops:edge-agent'" in refused.value.detail
    assert refused.value.context["retry_after_s"] == 90  # an operator must act: no hammering
    assert (cert.read_bytes(), key.read_bytes()) == supplied
    key.unlink()  # half a pair: refused too, the certificate left alone
    with pytest.raises(DeviceConfigInvalid, match=r"agent-cert\.der exists but .*agent-key\.pem"):
        await _driver(sim, cert, key).connect()
    assert cert.read_bytes() == supplied[0]


async def test_pem_and_der_are_read_by_content_whatever_the_file_names(sim, tmp_path) -> None:
    pem_cert, pem_key = tmp_path / "made-cert.pem", tmp_path / "made-key.pem"
    certs.create(pem_cert, pem_key, "urn:cityops:edge-agent")
    cert, key = tmp_path / "agent.der", tmp_path / "agent.key"  # PEM inside, other names
    pem_cert.rename(cert)
    pem_key.rename(key)
    assert cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE")
    assert await _reads(_driver(sim, cert, key))
    der_cert, der_key = tmp_path / "d-cert.crt", tmp_path / "d-key.bin"  # DER inside
    certs.create(der_cert, der_key, "urn:cityops:edge-agent")
    assert not der_key.read_bytes().startswith(b"-----")
    assert await _reads(_driver(sim, der_cert, der_key))
