"""The network page's derivation (network/topology.py): pure logic, no database."""

from __future__ import annotations

import pytest

from network.topology import ports_of, topology


def _device(id_: str, title: str = "", status: str | None = "online", **latest) -> dict:
    return {"id": id_, "title": title, "profile": "snmp-switch", "site": None,
            "department": None, "state": status, "latest": latest, "open_alarms": 0}


def test_ports_are_read_from_any_table_name_and_sorted_by_number() -> None:
    ports = ports_of({"port10.name": "Gi0/10", "port2.name": "Gi0/2", "port2.speed_mbps": 100,
                      "port2.in_bps": 5e6, "if1.oper_up": False, "if1.admin_up": True,
                      "cpu_load_pct": 3.0, "port2.bogus": 1, "portx.name": "x"})
    assert list(ports) == ["if1", "port2", "port10"]
    assert ports["port2"]["utilisation"] == pytest.approx(0.05)
    assert ports["port10"]["utilisation"] is None  # no speed, no rates
    assert ports["if1"]["down"] and "bogus" not in ports["port2"]


def test_lldp_by_sys_name_title_or_number_and_declared_links() -> None:
    a = _device("sw-a", "Core A", **{"port1.name": "xe-1", "port1.oper_up": True,
                                     "port1.neighbor": "ACCESS-B", "port1.neighbor_port": "7",
                                     "port2.name": "xe-2", "port2.neighbor": "nobody",
                                     "port2.neighbor_port": "1"})
    b = _device("sw-b", **{"sys_name": "access-b", "port7.name": "ge7", "port7.oper_up": True,
                           "port7.speed_mbps": 1000, "port7.out_bps": 9e8,
                           "port7.neighbor": "core a", "port7.neighbor_port": "xe-1",
                           "port8.name": "ge8", "port8.neighbor": "sw-b",
                           "port8.neighbor_port": "ge7"})  # itself: no link
    c = _device("rt-c", status="offline", **{"if1.name": "wan", "if1.oper_up": False})
    declared = [{"id": 5, "device_a": "sw-b", "port_a": "port8", "device_b": "rt-c",
                 "port_b": "if1", "note": "wan"},
                {"id": 6, "device_a": "sw-b", "port_a": "port7", "device_b": "sw-a",
                 "port_b": "port1", "note": "also by LLDP"},
                {"id": 7, "device_a": "sw-a", "port_a": "port2", "device_b": "elsewhere",
                 "port_b": "port1", "note": "an end the caller does not see"}]
    graph = topology([a, b, c], declared)
    links = graph["links"]
    assert [(x["source"], x["id"]) for x in links] == [("lldp", 6), ("declared", 5)]
    assert links[0]["note"] == "also by LLDP" and links[0]["utilisation"] == pytest.approx(0.9)
    assert links[1]["down"] and links[1]["utilisation"] is None
    status = {n["id"]: n["status"] for n in graph["nodes"]}
    assert status == {"sw-a": "ok", "sw-b": "ok", "rt-c": "offline"}


def test_a_neighbour_name_several_devices_answer_to_links_to_none() -> None:
    a = _device("sw-a", "Switch", **{"port1.name": "p1", "port1.neighbor": "switch",
                                     "port1.neighbor_port": "p1"})
    b = _device("sw-b", "Switch", **{"port1.name": "p1"})  # titled as sw-a: ambiguous
    c = _device("sw-c", "Edge", **{"port1.name": "p1", "port1.neighbor": "sw-b",
                                   "port1.neighbor_port": "p1"})  # by id: unambiguous
    links = topology([a, b, c], [])["links"]
    assert [(x["a"]["device"], x["b"]["device"]) for x in links] in (
        [("sw-c", "sw-b")], [("sw-b", "sw-c")])
