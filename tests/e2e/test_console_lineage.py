"""The lineage page (数据 → 数据血缘): a field's chain from the source system's column to the data
service's field as a layered graph; clicking a node follows that node's own lineage."""

from __future__ import annotations

import psycopg
from playwright.sync_api import Page, expect

from datafoundation.governance import Field, lineage, models, register_dataset, standards
from tests.e2e.conftest import Console, login, shoot

RAW, STD, TOPIC = "raw_scjg_qydj.firms", "std.enterprises", "topic.enterprises"


def _declare(database_url: str) -> None:
    """The datasets and lineage the sync and the shipped enterprise models record (written by
    the same functions; the models' builds are tested in tests/integration)."""
    std, _d = models.parse(standards.DEFAULT_DIR / "models" / "std_enterprises.yaml")
    topic, _d = models.parse(standards.DEFAULT_DIR / "models" / "topic_enterprises.yaml")
    raw_columns = ["id", "uscc", "name", "address", "industry_code", "registered_capital",
                   "status", "legal_person", "phone", "established", "deleted", "updated_at"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO departments (id, name) VALUES ('scjgj', '市场监管局') "
                     "ON CONFLICT DO NOTHING")
        conn.execute(
            "INSERT INTO resources (code, classification, name, provider_id, format, "
            "sharing_type, sharing_conditions, update_cycle, published_on, created_by) VALUES "
            "('5.01.999-0777', '5.01.999', '法人单位', 'scjgj', '数据库', 'conditional', '按需', "
            "'daily', current_date, 'test') ON CONFLICT DO NOTHING")
        register_dataset(conn, RAW, "企业登记系统 firms", "raw", "scjgj",
                         fields=[Field(c, "text") for c in raw_columns])
        register_dataset(conn, STD, std.title, "standard", "scjgj",
                         fields=[Field(c.name, c.type, c.title) for c in std.columns])
        register_dataset(conn, TOPIC, topic.title, "topic", "scjgj",
                         resource_code="5.01.999-0777",
                         fields=[Field(c.name, "text", c.title, c.element)
                                 for c in topic.columns])
        lineage.record_sync(conn, 0, "scjg_qydj", "firms", RAW, raw_columns)
        lineage.record_model(conn, std)
        lineage.record_model(conn, topic)


def test_lineage_graph_from_source_column_to_service_field(
    page: Page, console: Console, database_url: str
) -> None:
    _declare(database_url)
    login(page, console, "viewer", f"/data?tab=lineage&node={TOPIC}.legal_person")
    graph = page.locator("[data-test=lineage-graph]")
    for node in ("source:scjg_qydj.firms.legal_person", f"{RAW}.legal_person",
                 f"{STD}.legal_person", f"{TOPIC}.legal_person",
                 f"service:/v1/datasets/{TOPIC}/rows#legal_person"):
        expect(graph.locator(f"[data-node='{node}']")).to_be_visible()
    expect(graph).to_contain_text("贴源层")
    expect(graph).to_contain_text("法定代表人")
    assert graph.locator("path.lineage-edge").count() >= 5
    shoot(page, console, "lineage")
    graph.locator(f"[data-node='{STD}.legal_person']").click()
    expect(page).to_have_url(f"{console.url}/data?tab=lineage&node={STD}.legal_person")
    expect(graph.locator(f".lineage-node.start[data-node='{STD}.legal_person']")).to_be_visible()
