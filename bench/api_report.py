"""What `make bench-api` prints (bench/api.py): each scenario's row as it ends, and the
headline keys of bench/results/api.json against issue #21's targets."""

from __future__ import annotations


def print_row(name: str, rate: float, row: dict) -> None:
    api, direct, flat, dflat = row["api"], row["direct"], row["api_flat"], row["direct_flat"]
    print(f"  {name:8} at {rate:g}/s  api p50 {api['p50_ms']:7.2f} p99 {api['p99_ms']:7.2f} ms"
          f" | direct p50 {direct['p50_ms']:7.2f} p99 {direct['p99_ms']:7.2f} ms | flat out:"
          f" api {flat['achieved_rps']:7.1f}/s (p99 {flat['p99_ms']:.1f}) direct"
          f" {dflat['achieved_rps']:7.1f}/s (p99 {dflat['p99_ms']:.1f}) ratio"
          f" {row['ratio']:.2f}  errors {api['errors'] + flat['errors']}\n"
          + (f"  {'':8} ingested meanwhile: {api['ingest_rps']:,}/s at {rate:g} requests/s,"
             f" {flat['ingest_rps']:,}/s flat out (backlog drained first:"
             f" {row['api_drain_s']:g} s before the API's open loop)\n"
             if "ingest_rps" in api else "")
          + f"  {'':8} CPU ms/request flat out: API processes {flat['api_cpu_ms']:.2f},"
          f" bench client {flat['client_cpu_ms']:.2f} (direct path's client"
          f" {dflat['client_cpu_ms']:.2f}); rounds/s API {flat['rounds_rps']}, direct"
          f" {dflat['rounds_rps']}", flush=True)


def summarise(results: dict) -> None:
    """The headline keys, from the loaded run when there is one, against the targets."""
    run = results.get("under_ingest") or results["idle"]
    for name, target in (("latest", 10.0), ("buckets", 20.0), ("one", None)):
        if name not in run:
            continue
        key = "latest_one" if name == "one" else name
        results[f"{key}_p99_ms"] = run[name]["api"]["p99_ms"]
        results[f"{key}_ratio"] = run[name]["ratio"]
        cold = results["idle"].get(name, {}).get("api_cold")
        if cold:
            results[f"{key}_cold_p99_ms"] = cold["p99_ms"]
            print(f"{name}: first visits (cold caches, idle) p50 {cold['p50_ms']:.2f} p99"
                  f" {cold['p99_ms']:.2f} ms")
        ingesting = run[name]["api"].get("ingest_rps")
        if ingesting is not None:  # the rate while that p99 was measured
            results[f"{key}_ingest_rps"] = ingesting
        if target is not None:
            print(f"{name}: p99 {run[name]['api']['p99_ms']:.2f} ms (target <= {target:g})"
                  + (f" while {ingesting:,} readings/s were ingested" if ingesting else "")
                  + f"; flat-out ratio API/direct {run[name]['ratio']:.2f} (target >= 0.70)")
