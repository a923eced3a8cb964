"""Alarm rules (`/v1/rules`): the data administrator (and the system administrator) lists,
creates, edits, enables and disables them, and previews what a rule would have raised on the
last 24 hours. The ingest workers pick a change up within `ingest_rules_reload_s`.

A rule's body is the same document as in a `cityops rules load` file (docs/ingestion.md);
a refusal is 422 with `field.path: message` parts, one per problem."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request

from api.deps import Conn, allow, audit_detail
from api.schemas.rules import EnabledIn, PreviewOut, RuleOut
from cityops.errors import InvalidInput
from cityops.principal import Role
from cityops.wire import ID_PATTERN
from ingestion.rules import manage
from ingestion.rules.preview import preview

router = APIRouter(tags=["rules"], dependencies=[allow(Role.DATA_ADMIN)])
RuleId = Annotated[str, Path(pattern=ID_PATTERN)]
RuleBody = Annotated[dict[str, Any], Body(
    description="a rule as in a rules file: id, kind, severity, target, and the kind's fields",
    examples=[{"id": "ups-battery-low", "kind": "threshold", "severity": "major",
               "title": "UPS battery low", "target": {"point": "battery_pct"},
               "below": 20, "clear": 30, "for_s": 60}])]


@router.get("/v1/rules", response_model=list[RuleOut])
async def list_rules(conn: Conn) -> list[dict]:
    """Every rule, with its open alarms."""
    return await manage.list_rules(conn)


@router.get("/v1/rules/{rule_id}", response_model=RuleOut)
async def get_rule(rule_id: RuleId, conn: Conn) -> dict:
    return await manage.get_rule(conn, rule_id)


@router.post("/v1/rules", response_model=RuleOut, status_code=201)
async def create_rule(body: RuleBody, conn: Conn, request: Request) -> dict:
    audit_detail(request, rule=body.get("id"), kind=body.get("kind"))
    return await manage.save_rule(conn, manage.validate_rule(body), create=True)


@router.put("/v1/rules/{rule_id}", response_model=RuleOut)
async def replace_rule(rule_id: RuleId, body: RuleBody, conn: Conn, request: Request) -> dict:
    """Replace the rule; its id cannot change (make a new rule instead)."""
    audit_detail(request, rule=rule_id, kind=body.get("kind"))
    if body.setdefault("id", rule_id) != rule_id:
        raise InvalidInput(f"id: {body['id']!r} differs from the rule edited ({rule_id!r})")
    return await manage.save_rule(conn, manage.validate_rule(body), create=False)


@router.put("/v1/rules/{rule_id}/enabled", response_model=RuleOut)
async def enable_rule(rule_id: RuleId, body: EnabledIn, conn: Conn, request: Request) -> dict:
    """Switch a rule on or off; an alarm it holds open stays until cleared."""
    audit_detail(request, rule=rule_id, enabled=body.enabled)
    return await manage.set_enabled(conn, rule_id, body.enabled)


@router.post("/v1/rules/preview", response_model=PreviewOut)
async def preview_rule(body: RuleBody, conn: Conn) -> dict:
    """What this rule (saved or not) would have raised on the last 24 hours, per device,
    from the 1-minute rollups: threshold and offline rules (ingestion/rules/preview.py)."""
    return await preview(conn, manage.validate_rule(body))
