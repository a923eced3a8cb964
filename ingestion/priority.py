"""Ingestion waits behind the readers for a core (issue #21).

On a machine that runs the API and ingestion side by side (a county's single server, or this
2-core one), a burst of decoding and COPY takes the cores for tens of milliseconds, and a
big screen's request that arrives then waits that long: `make bench-api` measured the API's
p99 at 8.5 ms idle and 41.6 ms while 83,000 readings/s were ingested. Ingestion does not need
low latency (the broker holds what it has not taken, commits come in batches), the readers
do. So a worker lowers its own CPU priority at start (`CITYOPS_INGEST_NICE`, default 10:
a nice-0 task runs about ten times as often as a nice-10 one when both want a core, and
preempts it on waking).

Its database sessions keep their priority. They were niced too for a while (the `prioritize`
extension), and the readers' p99 got worse, not better: latest of 1,000 devices under ingest
25 and 67 ms with ingestion's backends at nice 10 against 15 and 18 ms without, alternated
in the same hour (docs/ingestion.md). A backend holds locks and buffer pins that readers
wait for (the latest-value rows, WAL insertion); descheduled at nice 10 while holding one,
it makes the nice-0 readers wait behind it: priority inversion.
"""

from __future__ import annotations

import os


def lower_worker_priority(nice: int) -> int:
    """This process (and the threads it starts later) at `nice`, never higher in priority
    than it already is; the nice value it runs at. Called first thing at a worker's start:
    on Linux the value is per thread, inherited by threads created afterwards."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    return os.getpriority(os.PRIO_PROCESS, 0)
