"""Prometheus metrics of one ingest worker, on their own registry (so tests can make several).

Readings per second is `rate(cityops_ingest_readings_total[1m])`; lag is how far the newest
reading of the last commit is behind the wall clock, plus the messages held unacknowledged.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.readings = Counter("cityops_ingest_readings", "Readings committed", registry=r)
        self.messages = Counter("cityops_ingest_messages", "Telemetry messages acked", registry=r)
        self.duplicates = Counter(
            "cityops_ingest_duplicate_batches", "Batches skipped as already stored", registry=r)
        self.batch_readings = Histogram(
            "cityops_ingest_batch_readings", "Readings per committed transaction",
            buckets=_SIZE_BUCKETS, registry=r)
        self.batch_messages = Histogram(
            "cityops_ingest_batch_messages", "Messages per committed transaction",
            buckets=_SIZE_BUCKETS, registry=r)
        self.commit_seconds = Histogram(
            "cityops_ingest_commit_seconds", "Time to store and commit one transaction",
            buckets=_LATENCY_BUCKETS, registry=r)
        # telemetry of gateways this deployment does not know (another deployment's, on a
        # shared broker): acknowledged, neither stored nor dead-lettered
        self.foreign_messages = Counter(
            "cityops_ingest_foreign_messages", "Telemetry of gateways not registered here",
            registry=r)
        self.dead_letters = Counter(
            "cityops_ingest_dead_letters", "Dead letters stored", ["reason"], registry=r)
        self.lag_seconds = Gauge(
            "cityops_ingest_lag_seconds",
            "Wall clock minus the newest reading time of the last commit", registry=r)
        self.pending_messages = Gauge(
            "cityops_ingest_pending_messages", "Messages received, waiting for a batch",
            registry=r)
        self.received = 0  # counted by the worker per message; read only when scraped
        self.received_messages = Gauge(
            "cityops_ingest_received_messages", "Telemetry messages received since start",
            registry=r)
        self.received_messages.set_function(lambda: self.received)
        self.db_retries = Counter(
            "cityops_ingest_db_retries", "Store attempts that failed and were retried",
            registry=r)
        self.rule_seconds = Histogram(
            "cityops_rules_evaluation_seconds", "Rule evaluation time per commit",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.alarm_transitions = Counter(
            "cityops_rules_transitions", "Alarm raises and clears made by rules", registry=r)
        self.alarm_events_published = Counter(
            "cityops_alarm_events_published", "Alarm events published on the internal topic",
            registry=r)
        self.job_errors = Counter(
            "cityops_ingest_job_errors", "Failed runs of periodic jobs", ["job"], registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
        log.info("metrics on http://%s:%d/metrics", host, port)
