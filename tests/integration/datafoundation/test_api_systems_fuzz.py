"""Schemathesis over the 数据汇聚 operations (tag "data foundation"): never a 5xx, every answer
of a declared status, content type and schema (the suite's own fuzz test covers other tags)."""

from __future__ import annotations

from cityops.settings import Settings
from tests.api_kit import bearer
from tests.integration.test_api_schemathesis import conformance, server  # noqa: F401


def test_data_foundation_answers_conform_to_the_document(server: str,  # noqa: F811
                                                          settings: Settings) -> None:
    calls, failures = conformance(server, bearer(settings, "admin", "t-fuzz"),
                                  {"data foundation"}, 3)
    assert calls > 20
    assert not failures, "\n".join(failures[:30])
