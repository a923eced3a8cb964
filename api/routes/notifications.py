"""Notifications (issue #18 item 3): channels (the system administrator's; secrets go in, never
out), subscriptions, and the delivery log with each provider's answer."""

from __future__ import annotations

from typing import Annotated, Literal

import httpx
from fastapi import APIRouter, Depends, Path, Query

from api.deps import Conn, get_settings, require
from api.schemas.notifications import (
    ChannelIn,
    ChannelOut,
    DeliveryOut,
    SubscriptionIn,
    SubscriptionOut,
    TestIn,
    TestOut,
)
from cityops.principal import Principal, Role
from cityops.settings import Settings
from notifications import store, worker
from notifications.channels.base import Message

router = APIRouter(tags=["notifications"])
Admin = Annotated[Principal, Depends(require())]
Reader = Annotated[Principal, Depends(require(Role.OPERATOR, Role.DISPATCHER, Role.DATA_ADMIN))]
LogReader = Annotated[Principal, Depends(require(
    Role.OPERATOR, Role.DISPATCHER, Role.DATA_ADMIN, Role.DEPARTMENT_STAFF))]


@router.get("/v1/notification-channels", response_model=list[ChannelOut])
async def list_channels(conn: Conn, caller: Admin) -> list[dict]:
    return await store.channels(conn)


@router.post("/v1/notification-channels", response_model=ChannelOut, status_code=201)
async def add_channel(conn: Conn, caller: Admin, body: ChannelIn,
                      settings: Annotated[Settings, Depends(get_settings)]) -> dict:
    return await store.add_channel(conn, settings.secret_key.get_secret_value(),
                                   body.model_dump(), caller.name)


@router.delete("/v1/notification-channels/{channel_id}", status_code=204)
async def delete_channel(conn: Conn, caller: Admin,
                         channel_id: Annotated[int, Path(ge=1)]) -> None:
    await store.delete(conn, "notification_channels", channel_id, "channel")


@router.post("/v1/notification-channels/{channel_id}/test", response_model=TestOut)
async def test_channel(conn: Conn, caller: Admin, body: TestIn,
                       channel_id: Annotated[int, Path(ge=1)],
                       settings: Annotated[Settings, Depends(get_settings)]) -> dict:
    """Send a test message now and answer with what the provider said (not queued, not
    retried: this is the administrator checking the address, key and signature)."""
    row = await store.channel_row(conn, channel_id)
    message = Message("测试消息 test message", body.text, "minor")
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        answer = await worker.send(settings.secret_key.get_secret_value(), row["kind"],
                                   row["config"], row["secret"], message, body.recipients,
                                   client)
    return {"ok": answer.ok, "status": answer.status, "answer": answer.text}


@router.get("/v1/subscriptions", response_model=list[SubscriptionOut])
async def list_subscriptions(conn: Conn, caller: Reader) -> list[dict]:
    return await store.subscriptions(conn)


@router.post("/v1/subscriptions", response_model=SubscriptionOut, status_code=201)
async def add_subscription(conn: Conn, caller: Admin, body: SubscriptionIn) -> dict:
    return await store.add_subscription(conn, body.model_dump(), caller.name)


@router.delete("/v1/subscriptions/{subscription_id}", status_code=204)
async def delete_subscription(conn: Conn, caller: Admin,
                              subscription_id: Annotated[int, Path(ge=1)]) -> None:
    await store.delete(conn, "notification_subscriptions", subscription_id, "subscription")


@router.get("/v1/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    conn: Conn, caller: LogReader,
    state: Annotated[Literal["pending", "sent", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict]:
    return await store.deliveries(conn, caller.departments, state, limit)
