"""The tables ``make bench`` prints, in Markdown, each under the line that says which command
measured it, on which date and at which commit (tools/provenance.py): pasted into
docs/performance.md as they are, they need no other note."""

from __future__ import annotations

from typing import Any


def report(result: dict[str, Any], caption: str) -> str:
    """Every table of ``result`` (the JSON ``make bench`` writes), each under ``caption``."""
    tables = [summary(result), runs(result)]
    if "lake" in result:
        tables.append(lake(result["lake"]))
    if "knobs" in result:
        tables.append(knobs(result["knobs"]))
    if "latency_knobs" in result:
        tables.append(latency_knobs(result["latency_knobs"]))
    if "dedup" in result:
        tables.append(dedup(result["dedup"]))
    heading = f"## make bench: {result['records']:,} records, median of {len(result['runs'])} runs"
    return "\n\n".join(["", heading, *(f"{caption}\n\n{table}" for table in tables)])


def summary(result: dict[str, Any]) -> str:
    m = result["median"]
    lines = [
        "| measure | value | target |",
        "|---|---|---|",
        "| bare confluent-kafka consumer, better of before and after "
        f"| {m['bare_rate']:,.0f} rec/s | ceiling |",
        f"| pipeline (every guarantee on) | {m['pipeline_rate']:,.0f} rec/s, "
        f"{m['fact_rate']:,.0f} fact rows/s | |",
        f"| pipeline / bare | {m['ratio']:.3f} | >= 0.5 |",
        "| pipeline CPU (consumer and workers, user + system) "
        f"| {m['cpu_us_per_record']:.1f} us per record | |",
        f"| naive per-message consumer | {m['naive_rate']:,.0f} rec/s | |",
        f"| pipeline / naive | {m['pipeline_vs_naive']:,.0f}x | >= 50x |",
        f"| peak memory (consumer + parsing workers, PSS) | {m['peak_rss_mib']:,.0f} MiB "
        "| <= 600 MiB |",
    ]
    if "memory" in result:
        mem = result["memory"]
        lines.append(
            f"| peak memory at {mem['small_records']:,} vs {mem['large_records']:,} records"
            f" | {mem['small_peak_rss_mib']:,.0f} vs {mem['large_peak_rss_mib']:,.0f} "
            "MiB | flat, <= 600 MiB |"
        )
    if "latency" in result:
        lat = result["latency"]
        lines.append(
            f"| latency at {lat['rate']:,.0f} orders/s, produce to commit | p50 "
            f"{lat['p50_ms']:,.0f} ms, p99 {lat['p99_ms']:,.0f} ms | p99 <= 1000 ms |"
        )
    return "\n".join(lines)


def runs(result: dict[str, Any]) -> str:
    """Each run's pair of bare reads around its pipeline run, and the naive consumer."""
    lines = [
        "| run | bare before / after | pipeline | / bare | CPU per record "
        "| peak memory (PSS; consumer RSS) |",
        "|---|---|---|---|---|---|",
    ]
    for n, run in enumerate(result["runs"], 1):
        pipe = run["pipeline"]
        lines.append(
            f"| {n} | {run['bare_before']['rate']:,.0f} / {run['bare_after']['rate']:,.0f} rec/s "
            f"| {pipe['rate']:,.0f} rec/s | {run['ratio']:.3f} "
            f"| {pipe['cpu_us_per_record']:.1f} us "
            f"| {pipe['peak_rss_mib']:,.0f} MiB; {pipe['main_peak_rss_mib']:,.0f} MiB |"
        )
    naive = result["naive"]
    lines.append(f"| naive | | {naive['rate']:,.0f} rec/s on {naive['records']:,} records | | | |")
    return "\n".join(lines)


def lake(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| lake members | rec/s | / bare | batches | lake write+commit p50 / p99 "
        "| conflicts retried | files before -> after maintenance | four reports before -> "
        "after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['members']} | {r['rate']:,.0f} | {r['ratio']:.3f} | {r['batches']:,} "
        f"| {r['write_p50_ms']:,.0f} / {r['write_p99_ms']:,.0f} ms "
        f"| {r['conflicts_retried']} | {r['files_before']:,} -> {r['files_after']:,} "
        f"(on disk {r['on_disk_before']:,} -> {r['on_disk_after']:,}) "
        f"| {r['reports_ms_before']:,.0f} -> {r['reports_ms_after']:,.0f} ms |"
        for r in runs
    ]
    return "\n".join(lines)


def knobs(points: list[dict[str, Any]]) -> str:
    lines = [
        "| --batch-max-records | --batch-max-seconds | rec/s | peak memory (PSS) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {k['batch_max_records']:,} | {k['batch_max_seconds']} | {k['rate']:,.0f} "
        f"| {k['peak_rss_mib']:,.0f} MiB |"
        for k in points
    ]
    return "\n".join(lines)


def latency_knobs(points: list[dict[str, Any]]) -> str:
    lines = [
        "| --batch-max-seconds | latency p50 | latency p99 (2,000 orders/s) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {k['batch_max_seconds']} | {k['p50_ms']:,.0f} ms | {k['p99_ms']:,.0f} ms |"
        for k in points
    ]
    return "\n".join(lines)


def dedup(points: list[dict[str, Any]]) -> str:
    lines = ["| processed_orders keys | write time per 10k-record batch |", "|---|---|"]
    lines += [f"| {d['processed_orders']:,} | {d['write_ms_median']:,.0f} ms |" for d in points]
    return "\n".join(lines)
