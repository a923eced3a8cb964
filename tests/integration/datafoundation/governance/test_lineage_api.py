"""GET /v1/lineage: from a column of the 市场监管局's MariaDB table through raw, standard and
topic to the field of the data service, recorded from the declarations alone."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from cityops.principal import Role
from datafoundation.governance import run as runner
from datafoundation.governance import standards
from tests.api_kit import api_settings, bearer, ok


@pytest.fixture(scope="module")
def api(settings, broker):
    with TestClient(create_app(api_settings(settings, broker))) as client:
        yield client


def _catalogue(database_url: str, dataset: str) -> str:
    """A catalogue entry for the topic dataset, as the catalogue's register would make."""
    code = f"5.01.999-{dataset.split('_')[-2][1:]:0>4}"  # a classification of its own
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO resources (code, classification, name, provider_id, format, "
            "sharing_type, sharing_conditions, update_cycle, published_on, created_by) VALUES "
            "(%s, '5.01.999', '法人单位', 'scjgj', '数据库', 'conditional', '按需申请', "
            "'daily', current_date, 'test')", (code,))
        conn.execute("UPDATE datasets SET resource_code = %s WHERE id = %s", (code, dataset))
    return code


def _path(edges: list[dict], start: str, end: str) -> list[str]:
    """The chain of nodes from start to end following the edges (one path)."""
    nxt: dict[str, list[str]] = {}
    for e in edges:
        nxt.setdefault(e["src"], []).append(e["dst"])
    paths = [[start]]
    while paths:
        path = paths.pop()
        if path[-1] == end:
            return path
        paths += [[*path, n] for n in nxt.get(path[-1], []) if n not in path]
    return []


def test_lineage_from_source_column_to_api_field(api, settings, database_url, governed,
                                                 firms_table):
    folder, suffix, _sync, raw = governed
    with psycopg.connect(database_url, autocommit=True) as conn:
        runner.run(conn, None, folder)
    topic = f"topic.enterprises_{suffix}"
    code = _catalogue(database_url, topic)
    viewer = bearer(settings, Role.VIEWER, "t-lineage-viewer")
    body = ok(api.get("/v1/lineage", params={"field": f"{topic}.legal_person"},
                      headers=viewer), 200)
    source = f"source:scjg_registry.{firms_table}.legal_person"
    service = f"service:/v1/datasets/{topic}/rows#legal_person"
    assert _path(body["edges"], source, service) == [
        source, f"{raw}.legal_person", f"std.enterprises_{suffix}.legal_person",
        f"{topic}.legal_person", f"resource:{code}#legal_person", service]
    models = {m["name"]: m for m in ok(api.get("/v1/layer-models", headers=viewer), 200)}
    std = models[f"std_enterprises_{suffix}"]
    assert (std["layer"], std["upstream"], std["version"]) == ("standard", [raw], 1)
    assert std["last_run"]["state"] == "succeeded" and std["last_run"]["rows_rejected"] > 0
    nodes = {n["id"]: n for n in body["nodes"]}
    assert (nodes[source]["title"], nodes[source]["department"]) == ("企业登记系统", "scjgj")
    assert nodes[f"{topic}.legal_person"]["element"] == "DE00008"
    assert nodes[f"std.enterprises_{suffix}.legal_person"]["layer"] == "standard"
    step = next(e for e in body["edges"] if e["dst"] == f"std.enterprises_{suffix}.legal_person")
    assert step["via"] == f"model:std_enterprises_{suffix}" and step["transform"] == \
        "btrim(legal_person)"
    # a derived column: the division's name comes from the raw industry code via the model
    body = ok(api.get("/v1/lineage", params={"field": f"{topic}.industry_division"},
                      headers=viewer), 200)
    assert f"{raw}.industry_code" in {e["src"] for e in body["edges"]}
    # table level: raw → standard → topic → resource → service, upstream to the source table
    body = ok(api.get("/v1/lineage", params={"dataset": f"std.enterprises_{suffix}"},
                      headers=viewer), 200)
    assert _path(body["edges"], f"source:scjg_registry.{firms_table}",
                 f"service:/v1/datasets/{topic}/rows")[1:4] == [
        raw, f"std.enterprises_{suffix}", topic]


def test_lineage_bad_requests(api, settings):
    viewer = bearer(settings, Role.VIEWER, "t-lineage-viewer")
    for params, status, words in (({}, 422, "give dataset="),
                                  ({"dataset": "a.b", "field": "a.b.c"}, 422, "give dataset="),
                                  ({"field": "std.only_two"}, 422, "is not <schema>.<table>"),
                                  ({"dataset": "std.a\x00b"}, 422, "is not <schema>.<table>"),
                                  ({"dataset": "std.nowhere"}, 404, "no lineage recorded")):
        answer = api.get("/v1/lineage", params=params, headers=viewer)
        assert answer.status_code == status and words in answer.json()["detail"], answer.text
    assert api.get("/v1/lineage", params={"dataset": "std.x"}).status_code == 401
    operator = bearer(settings, Role.FIELD_TECHNICIAN, "t-lineage-tech")
    assert api.get("/v1/lineage", params={"dataset": "std.x"},
                   headers=operator).status_code == 403


def test_data_elements_and_code_tables(api, settings, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        standards.load(conn)
    viewer = bearer(settings, Role.VIEWER, "t-lineage-viewer")
    found = ok(api.get("/v1/data-elements", params={"q": "信用代码"}, headers=viewer), 200)
    assert [e["id"] for e in found] == ["DE00001"]  # by synonym and by name
    assert found[0]["data_format"] == "c18" and found[0]["source_org"] == "市场监管局"
    assert ok(api.get("/v1/data-elements", params={"q": "100%_"}, headers=viewer), 200) == []
    tables = {t["id"]: t["codes"] for t in ok(api.get("/v1/code-tables", headers=viewer), 200)}
    assert tables["hy"] == 117 and tables["xb"] == 4
    xzqh = ok(api.get("/v1/code-tables/xzqh", headers=viewer), 200)
    assert {v["name"] for v in xzqh["values"] if v["parent"] == "340621"} >= {"濉溪镇", "临涣镇"}
    answer = api.get("/v1/code-tables/nope", headers=viewer)
    assert answer.status_code == 404 and answer.json()["detail"] == \
        "code table nope does not exist"
    tech = bearer(settings, Role.FIELD_TECHNICIAN, "t-lineage-tech")
    assert api.get("/v1/data-elements", headers=tech).status_code == 403
