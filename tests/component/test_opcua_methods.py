"""OPC-UA method calls and writes against the simulator, which checks argument types and
answers `ok`/`message` like the field's node-opcua servers (issue #13, item 1). One server for
the module: the server's methods and the agent's profile differ on purpose, method by method."""

from __future__ import annotations

import orjson
import pytest

from cityops import wire
from cityops.errors import DeviceRejected
from edge_agents.commands import CommandExecutor
from edge_agents.drivers.opcua.driver import OpcUaDriver
from edge_agents.profiles import parse_profile
from tests.component.test_opcua_driver import ALL_TYPES, endpoint, simulator
from tests.helpers import free_port


def _method(name: str, args: list[tuple[str, str]], writes: bool = True) -> dict:
    return {"name": name, "args": [{"name": n, "data_type": t} for n, t in args],
            "call": {"object": "ns=2;s=all", "method": f"ns=2;s=all.{name}"},
            "writes": [{"point": "p_uint16", "arg": "preset"}] if writes else []}


# what the server has, and what the agent's profile says of the same methods
SERVER = [_method("recall_preset", [("preset", "uint16")]),
          _method("typed", [("preset", "int32")]),  # the profile says uint16 (as in the field)
          _method("no_change", [("preset", "uint16")], writes=False),
          _method("two_args", [("preset", "int32"), ("wall", "string")])]
AGENT = [_method("recall_preset", [("preset", "uint16")]),
         _method("typed", [("preset", "uint16")]),
         _method("no_change", [("preset", "uint16")]),
         _method("two_args", [("preset", "uint16")]),
         # no `call`: the agent writes both points; the second does not take the value
         {"name": "two_steps", "args": [{"name": "preset", "data_type": "uint16"}],
          "writes": [{"point": "p_uint16", "arg": "preset"}, {"point": "bool_as_int", "value": 5}]}]
# the device's Boolean node, which the agent's profile takes for an integer
BOOL_AS_INT = {"name": "bool_as_int", "data_type": "int32", "writable": True,
               "address": {"node": "ns=2;s=all.bool"}}
PROFILE = parse_profile(dict(ALL_TYPES, points=[*ALL_TYPES["points"], BOOL_AS_INT],
                             methods=AGENT), "all")


@pytest.fixture(scope="module")
async def sim():
    port = free_port()
    async with simulator(parse_profile(dict(ALL_TYPES, methods=SERVER), "all"), port) as server:
        yield server


@pytest.fixture
async def driver(sim):
    sim.calls.clear()
    sim.refusing.clear()
    driver = OpcUaDriver("dev", PROFILE, endpoint(sim.port, mode="poll"), timeout_s=1.0)
    await driver.connect()
    yield driver
    await driver.close()


async def test_a_method_the_device_refuses_is_failed_with_its_outputs(sim, driver) -> None:
    sim.refusing.add("recall_preset")
    with pytest.raises(DeviceRejected) as refused:
        await driver.call(PROFILE.method("recall_preset"), {"preset": 7})
    assert "ok=False" in refused.value.detail
    assert "message='recall_preset refused by the device'" in refused.value.detail
    # through the agent's command path: `failed`, the outputs in the detail
    executor = CommandExecutor(None, lambda _d: driver, None)  # type: ignore[arg-type]
    raw = orjson.dumps({"device": "dev", "method": "recall_preset", "args": {"preset": 7},
                        "expires_at": 32503680000000})
    status, detail, _ = await executor._execute(raw)
    assert status is wire.CommandStatus.FAILED and "ok=False" in detail
    sim.refusing.clear()
    assert await driver.call(PROFILE.method("recall_preset"), {"preset": 7}) == 7


async def test_arguments_are_sent_with_the_types_the_server_declares(sim, driver) -> None:
    assert await driver.call(PROFILE.method("typed"), {"preset": 12}) == 12
    assert sim.calls == [("typed", [12])]


async def test_a_call_whose_change_does_not_read_back_fails(sim, driver) -> None:
    await sim.set("p_uint16", 0)
    with pytest.raises(DeviceRejected, match="p_uint16 reads 0 after the call, not 9"):
        await driver.call(PROFILE.method("no_change"), {"preset": 9})


async def test_a_server_method_with_other_arguments_is_refused_before_the_call(sim, driver
                                                                               ) -> None:
    with pytest.raises(DeviceRejected, match=r"takes 2 argument\(s\) \(preset Int32, wall "
                                             r"String\), the profile gives 1"):
        await driver.call(PROFILE.method("two_args"), {"preset": 3})
    assert sim.calls == []


async def test_a_value_outside_the_nodes_type_is_rejected_with_the_reason(driver) -> None:
    with pytest.raises(DeviceRejected, match=r"70000 is outside Int16 \(-32768..32767\)"):
        await driver.write("p_int16", 70000)


async def test_every_write_of_a_method_is_checked_not_only_the_last(driver) -> None:
    with pytest.raises(DeviceRejected, match="bool_as_int reads True after the write, not 5"):
        await driver.call(PROFILE.method("two_steps"), {"preset": 4})
