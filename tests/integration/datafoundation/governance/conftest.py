"""The shipped enterprise models pointed at a test's own raw table and targets, so tests in
one session database do not build over each other."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import psycopg
import pytest

from datafoundation.governance import standards
from datafoundation.runner import run_sync
from tests.integration.datafoundation.conftest import SECRET_KEY, add_sync

_n = itertools.count(1)
MODELS = ("std_enterprises.yaml", "topic_enterprises.yaml", "topic_industrial_enterprises.yaml")


def governed_copy(tmp_path: Path, raw: str, suffix: str) -> Path:
    """governance/ with the enterprise models reading `raw` and building std.enterprises_<s>,
    topic.enterprises_<s>, topic.industrial_<s> (model names suffixed the same way)."""
    folder = tmp_path / "governance"
    shutil.copytree(standards.DEFAULT_DIR / "standards", folder / "standards")
    (folder / "models").mkdir()
    for name in MODELS:
        text = (standards.DEFAULT_DIR / "models" / name).read_text(encoding="utf-8")
        text = (text.replace("raw_scjg_qydj.firms", raw)
                .replace("std.enterprises", f"std.enterprises_{suffix}")
                .replace("topic.enterprises", f"topic.enterprises_{suffix}")
                .replace("topic.industrial_enterprises", f"topic.industrial_{suffix}")
                .replace("name: std_enterprises", f"name: std_enterprises_{suffix}")
                .replace("name: topic_enterprises", f"name: topic_enterprises_{suffix}")
                .replace("name: topic_industrial_enterprises", f"name: topic_industrial_{suffix}"))
        (folder / "models" / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def governed(tmp_path, database_url, registry_source, firms_table):
    """A synced registry table and the enterprise models over it; yields (folder, suffix,
    sync id, raw dataset)."""
    sync = add_sync(database_url, registry_source, firms_table, mode="full")
    run_sync(database_url, SECRET_KEY, sync)
    suffix = f"t{next(_n)}_{firms_table.split('_')[-1]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        standards.load(conn)
    raw = f"raw_scjg_registry.{firms_table}"
    return governed_copy(tmp_path, raw, suffix), suffix, sync, raw
