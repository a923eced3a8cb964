"""A session's subscription: monitored items created in batches, notifications delivered as
readings in bursts, the end of the session noticed.

Items are created `batch_size` at a time, so a server that caps one CreateMonitoredItems
request still takes thousands of nodes; an item the server refuses is a `bad` reading and
the others work. A publish of 10,000 changes reaches the agent as one list of readings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from asyncua import ua
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent

from cityops.wire import Quality
from edge_agents.driver import OnReadings
from edge_agents.drivers.opcua.codec import NodeIds
from edge_agents.drivers.opcua.config import OpcUaEndpoint
from edge_agents.points import OpcUaPoint, Reading

log = logging.getLogger(__name__)
ToReading = Callable[[OpcUaPoint, ua.DataValue | None, int], Reading]


def item_request(index: int, point: OpcUaPoint, ep: OpcUaEndpoint, nodes: NodeIds
                 ) -> ua.MonitoredItemCreateRequest:
    address = point.address
    deadband = address.deadband if address.deadband is not None else ep.deadband
    mfilter = None
    if deadband and point.data_type.is_numeric:
        mfilter = ua.DataChangeFilter()
        mfilter.Trigger = ua.DataChangeTrigger.StatusValue
        mfilter.DeadbandType = ua.DeadbandType.Absolute
        mfilter.DeadbandValue = deadband / abs(point.scale or 1.0)  # in raw units
    sampling = address.sampling_interval_ms
    params = ua.MonitoringParameters()
    params.ClientHandle = index + 1  # our own handles: the point's index + 1
    params.SamplingInterval = sampling if sampling is not None else ep.sampling_interval_ms
    params.QueueSize = address.queue_size or ep.queue_size
    params.DiscardOldest = True
    if mfilter is not None:
        params.Filter = mfilter
    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = ua.ReadValueId()
    request.ItemToMonitor.NodeId = nodes(address.node)
    request.ItemToMonitor.AttributeId = ua.AttributeIds.Value
    request.MonitoringMode = ua.MonitoringMode.Reporting
    request.RequestedParameters = params
    return request


async def create_items(sub: Any, device: str, points: list[OpcUaPoint], ep: OpcUaEndpoint,
                       nodes: NodeIds) -> tuple[int, list[Reading]]:
    """(items created, a bad reading for each point the server refused to monitor)."""
    created, failed = 0, []
    for start in range(0, len(points), ep.batch_size):
        chunk = points[start : start + ep.batch_size]
        requests = [item_request(start + i, p, ep, nodes) for i, p in enumerate(chunk)]
        results = await sub.create_monitored_items(requests)
        now = int(time.time() * 1000)
        for point, result in zip(chunk, results, strict=True):
            if isinstance(result, ua.StatusCode):
                log.warning("device %s point %s: not monitored: %s", device, point.name,
                            result.name)
                failed.append(Reading(device, point.name, now, None, Quality.BAD))
            else:
                created += 1
    return created, failed


async def consume(sub: Any, points: list[OpcUaPoint], to_reading: ToReading,
                  on_readings: OnReadings, lost: asyncio.Future) -> None:
    """Deliver notifications until the subscription ends; one delivery per burst."""
    loop = asyncio.get_running_loop()
    pending: list[Reading] = []
    flush_scheduled = False

    def flush() -> None:
        nonlocal flush_scheduled, pending
        flush_scheduled = False
        batch, pending = pending, []
        if batch:
            on_readings(batch)

    try:
        async for event in sub:
            if isinstance(event, DataChangeEvent):
                item = event.data.monitored_item
                pending.append(to_reading(points[item.ClientHandle - 1], item.Value,
                                          int(time.time() * 1000)))
                if not flush_scheduled:  # a publish of 10,000 changes is one list
                    flush_scheduled = True
                    loop.call_soon(flush)
            elif isinstance(event, StatusChangeEvent) and not event.notification.Status.is_good():
                if not lost.done():
                    lost.set_result(ConnectionError(event.notification.Status.name))
                return
    finally:
        flush()  # now, before the caller learns the session ended


async def end_on_loss(sub: Any, lost: asyncio.Future) -> None:
    await asyncio.shield(lost)
    # delete() always ends the iterator in consume(), even when the server is gone
    with contextlib.suppress(Exception):
        await asyncio.wait_for(sub.delete(), 2.0)
