"""The audit log's filters, one definition for the list (GET /v1/audit) and the export (GET
/v1/audit/export): what the auditor sees on the page is what the export holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Query

Text = Annotated[str | None, Query(max_length=200)]


def _like(text: str) -> str:
    # the auditor's text is matched literally: % and _ are not wildcards
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class AuditFilter:
    """since <= time < until; actor exactly; action and target containing the text."""

    since: datetime | None = None
    until: datetime | None = None
    actor: Text = None
    action: Text = None
    target: Text = None
    outcome: Annotated[str | None, Query(pattern="^(ok|denied|invalid|failed)$")] = None

    def where(self) -> tuple[str, list]:
        clauses, params = ["true"], []
        for clause, value in (("time >= %s", self.since), ("time < %s", self.until),
                              ("actor = %s", self.actor), ("outcome = %s", self.outcome),
                              ("action ILIKE %s", self.action and f"%{_like(self.action)}%"),
                              ("target ILIKE %s", self.target and f"%{_like(self.target)}%")):
            if value is not None and value != "":
                clauses.append(clause)
                params.append(value)
        return " AND ".join(clauses), params
