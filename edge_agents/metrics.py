"""Prometheus metrics of one agent, on the port its config names (`metrics_port`).

Values are read from the agent when scraped, so the polling path pays nothing per reading.
The registry is the agent's own: several agents (tests, benchmarks) can live in one process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class AgentCollector(Collector):
    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Any]:
        a = self.agent
        gw = a.config.gateway
        yield _counter("cityops_agent_readings", "Readings collected from devices", gw,
                       a.readings_total)
        yield _counter("cityops_agent_dropped_readings", "Readings dropped by a full queue", gw,
                       a.queue.dropped_readings)
        yield _counter("cityops_agent_published_batches", "Batches acknowledged by the broker",
                       gw, a.uplink.published_batches)
        yield _counter("cityops_agent_committed_batches",
                       "Batches ingestion receipted as committed (and so left the queue)", gw,
                       a.uplink.committed_batches)
        yield _counter("cityops_agent_resent_batches",
                       "Batches sent again in a session: no receipt in time", gw,
                       a.uplink.resent_batches)
        yield _gauge("cityops_agent_awaiting_receipt_batches",
                     "Batches the broker acknowledged that wait for their commit receipt", gw,
                     len(a.uplink.receipts.waiting))
        yield _gauge("cityops_agent_queue_readings", "Readings waiting in the local queue", gw,
                     a.queue.readings)
        yield _gauge("cityops_agent_queue_bytes", "Payload bytes of the local queue", gw,
                     a.queue.bytes)
        yield _gauge("cityops_agent_queue_file_bytes",
                     "Bytes the local queue's files take on disk (limit: queue.max_bytes)", gw,
                     a.queue.disk_bytes())
        yield _gauge("cityops_agent_broker_connected", "1 while the broker session is up", gw,
                     int(a.uplink.connected.is_set()))
        up = GaugeMetricFamily("cityops_agent_device_up", "1 while the device answers",
                               labels=["gateway", "device"])
        for device, state in a.device_state.items():
            up.add_metric([gw, device], int(state == "online"))
        yield up
        commands = CounterMetricFamily("cityops_agent_commands", "Commands by outcome",
                                       labels=["gateway", "status"])
        for status, count in a.commands.counts.items():
            commands.add_metric([gw, status], count)
        yield commands


def _counter(name: str, doc: str, gateway: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["gateway"])
    family.add_metric([gateway], value)
    return family


def _gauge(name: str, doc: str, gateway: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["gateway"])
    family.add_metric([gateway], value)
    return family


class MetricsServer:
    def __init__(self, agent: Any, host: str, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(AgentCollector(agent))
        self.host, self.port = host, port
        self._server: Any = None

    def start(self) -> None:
        self._server, _thread = start_http_server(self.port, self.host, registry=self.registry)
        self.port = self._server.server_port
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
