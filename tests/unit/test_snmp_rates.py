"""SNMP pure logic: counter rates (wrap, restart, backwards), tables expanded into points,
profile errors with their field path, trap mappings."""

from __future__ import annotations

import pytest

from cityops.errors import ConfigError
from edge_agents.config import load_agent_config
from edge_agents.drivers.snmp.client import Varbind
from edge_agents.drivers.snmp.config import TrapMapping
from edge_agents.drivers.snmp.rates import CounterRates, uptime_went_back
from edge_agents.drivers.snmp.traps import TRAP_OID, trap_values
from edge_agents.profiles import parse_profile


def test_first_sample_then_rate_per_second() -> None:
    rates = CounterRates()
    assert rates.update("in", 1000, "counter64", 10.0).value is None
    assert rates.update("in", 6000, "counter64", 12.0).value == pytest.approx(2500.0)


def test_a_sample_too_soon_is_skipped_and_the_baseline_kept() -> None:
    rates = CounterRates(min_window_s=5.0)
    rates.update("in", 1000, "counter64", 0.0)
    assert rates.update("in", 1100, "counter64", 0.01).why.startswith("too soon")
    assert rates.update("in", 11000, "counter64", 10.0).value == pytest.approx(1000.0)


def test_counter32_wraps_once() -> None:
    rates = CounterRates()
    rates.update("in", 2**32 - 1000, "counter32", 0.0)
    assert rates.update("in", 3000, "counter32", 2.0).value == pytest.approx(2000.0)


def test_counter32_falling_by_more_than_half_is_a_clear_not_a_wrap() -> None:
    rates = CounterRates()
    rates.update("in", 1_000_000_000, "counter32", 0.0)
    assert "went backwards" in rates.update("in", 1000, "counter32", 1.0).why
    assert rates.update("in", 3000, "counter32", 2.0).value == pytest.approx(2000.0)


def test_counter64_backwards_is_refused_then_rebased() -> None:
    rates = CounterRates()
    rates.update("in", 10_000, "counter64", 0.0)
    refused = rates.update("in", 500, "counter64", 1.0)
    assert refused.value is None and "went backwards" in refused.why
    assert rates.update("in", 1500, "counter64", 2.0).value == pytest.approx(1000.0)


def test_restart_starts_a_new_baseline_no_spike() -> None:
    rates = CounterRates()
    rates.update("in", 4_000_000_000, "counter32", 0.0)
    assert uptime_went_back(500_000, 120)
    rates.restart()  # the driver does this when sysUpTime goes back
    assert rates.update("in", 7000, "counter32", 10.0).value is None
    assert rates.update("in", 9000, "counter32", 12.0).value == pytest.approx(1000.0)
    assert not uptime_went_back(None, 5) and not uptime_went_back(5, 6)


def test_fallback_switch_and_no_time_give_no_rate() -> None:
    rates = CounterRates()
    rates.update("in", 10, "counter64", 1.0)
    assert "changed" in rates.update("in", 20, "counter32", 2.0).why
    assert rates.update("in", 30, "counter32", 2.0).why.startswith("no time")
    assert rates.update("x", 1, "gauge", 1.0).why.startswith("not a counter")


SWITCH = {
    "model": "t-switch", "category": "network", "protocol": "snmp",
    "points": [{"name": "uptime_s", "data_type": "float64", "scale": 0.01,
                "address": {"oid": "1.3.6.1.2.1.1.3.0"}}],
    "tables": [{"name": "port", "rows": [1, 7], "columns": [
        {"name": "in_bps", "oid": "1.3.6.1.2.1.31.1.1.1.6", "fallback": "1.3.6.1.2.1.2.2.1.10",
         "rate": True, "scale": 8, "unit": "bit/s"},
        {"name": "oper_up", "data_type": "bool", "oid": "1.3.6.1.2.1.2.2.1.8", "equals": 1}]}],
    "traps": [{"trap": "1.3.6.1.6.3.1.1.5.3", "point": "port{index}.oper_up", "value": False,
               "index_of": "1.3.6.1.2.1.2.2.1.1"}],
}


def test_tables_become_points_named_by_row() -> None:
    profile = parse_profile(SWITCH, "t.yaml")
    names = [p.name for p in profile.points]
    assert names == ["uptime_s", "port1.in_bps", "port1.oper_up", "port7.in_bps",
                     "port7.oper_up"]
    port7 = profile.point("port7.in_bps")
    assert port7.address.oid == "1.3.6.1.2.1.31.1.1.1.6.7"
    assert port7.address.fallback == "1.3.6.1.2.1.2.2.1.10.7" and port7.address.rate
    # read back from the registry (body = model_dump): not expanded twice
    again = parse_profile(profile.model_dump(mode="json"), "registry")
    assert [p.name for p in again.points] == names


@pytest.mark.parametrize(("change", "message"), [
    ({"points": [{"name": "x", "data_type": "float32", "address": {"walk": "1.3.6.1"}}]},
     r"points\.0\.address.*`walk` needs `reduce`"),
    ({"tables": [{"name": "port", "rows": [1], "row_range": [1, 2],
                  "columns": SWITCH["tables"][0]["columns"]}]}, "exactly one of `rows`"),
    ({"traps": [{"trap": "1.3.6.1.6.3.1.1.5.3", "point": "fan{index}.ok", "value": False,
                 "index_of": "1.3.6.1.2.1.2.2.1.1"}]}, "unknown point fan"),
    ({"points": [{"name": "x", "data_type": "float32", "address": {"oid": "iso.3.6"}}]},
     r"points\.0\.address\.oid"),
])
def test_profile_errors_name_the_field(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_profile(SWITCH | change, "t.yaml")


def test_lldp_columns_pick_their_row_from_inside_the_index() -> None:
    from edge_agents.drivers.snmp.poll import by_row, reduce_walk

    column = "1.0.8802.1.1.2.1.4.1.1.9"
    profile = parse_profile(SWITCH | {"tables": [{"name": "port", "rows": [3, 4], "columns": [
        {"name": "neighbor", "data_type": "string", "oid": column, "index_at": -2}]}],
        "traps": []}, "t")
    walked = by_row(column, [Varbind(f"{column}.0.3.1", "string", "core-sw"),
                             Varbind(f"{column}.0.12.1", "string", "other")])
    port3, port4 = profile.point("port3.neighbor"), profile.point("port4.neighbor")
    assert port3.address.walk == column and port3.address.row == 3
    assert reduce_walk(port3, {column: walked}) == "core-sw"
    assert reduce_walk(port4, {column: walked}) == ""  # no neighbour on port 4


def test_trap_mapping_finds_the_row_index() -> None:
    mappings = [TrapMapping.model_validate(m) for m in SWITCH["traps"]]
    binds = [Varbind("1.3.6.1.2.1.1.3.0", "timeticks", 5),
             Varbind(TRAP_OID, "oid", "1.3.6.1.6.3.1.1.5.3"),
             Varbind("1.3.6.1.2.1.2.2.1.1.12", "integer", 12)]
    assert trap_values(mappings, binds) == [("port12.oper_up", False)]
    other = [Varbind(TRAP_OID, "oid", "1.3.6.1.6.3.1.1.5.4")]
    assert trap_values(mappings, other) == []
    with pytest.raises(ValueError, match="index_of"):
        TrapMapping(trap="1.3.6.1.6.3.1.1.5.3", point="port{index}.oper_up", value=False)


def test_an_unset_key_fails_the_agent_at_start_with_the_field(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CITYOPS_T_NO_SUCH_KEY", raising=False)
    monkeypatch.setenv("CITYOPS_T_COMMUNITY", "c")
    path = tmp_path / "gw.yaml"
    path.write_text(
        "gateway: gw-t\nqueue: {path: q.db}\ndevices:\n"
        "  - {id: ups, profile: power/snmp_ups, endpoint: {protocol: snmp, host: 10.0.0.9,\n"
        "     community: {env: CITYOPS_T_COMMUNITY}, traps: {users: [{username: t,\n"
        "     auth_key: {env: CITYOPS_T_NO_SUCH_KEY}, priv_key: {env: CITYOPS_T_COMMUNITY}}]}}}\n")
    assert load_agent_config(path).config.devices[0].endpoint.traps.port == 162
    with pytest.raises(ConfigError, match=r"devices\.0\.endpoint\.traps\.users\.0\.auth_key: "
                                          "the environment variable CITYOPS_T_NO_SUCH_KEY"):
        load_agent_config(path, check_secrets=True)
