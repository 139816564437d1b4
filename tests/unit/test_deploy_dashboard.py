"""The Grafana dashboard and the Prometheus rules query only what the consumer really exports.

The exported names come from the consumer's own registry (``consumer.metrics.Metrics``) after
one observed batch, read back through ``prometheus_client``'s exposition and parser, so a renamed
metric or label in the consumer fails here rather than as an empty panel in production.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from consumer.serving.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "orders-pipeline.json"
PROMETHEUS_DIR = DEPLOY / "prometheus"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources"

#: Series Prometheus itself attaches to every target (not exported by the consumer).
PROMETHEUS_SYNTHETIC = {"up"}
#: Labels Prometheus adds to every scraped series, and the static label in prometheus.yml.
TARGET_LABELS = {"job", "instance", "service"}
#: Exposition names of each metric type, by suffix.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan", "atan2",
}  # fmt: skip
#: What the dashboard must show (issue 7): throughput, lag, rejects by reason, batch duration,
#: fact rows, last commit age; lag in time, memory and CPU with the parsing workers (issue 26).
REQUIRED_IN_DASHBOARD = {
    "pipeline_records_total",
    "pipeline_consumer_lag",
    "pipeline_consumer_lag_seconds",
    "process_resident_memory_bytes",
    "pipeline_parse_workers_resident_memory_bytes",
    "process_cpu_seconds_total",
    "pipeline_parse_workers_cpu_seconds_total",
    "pipeline_rejected_records_total",
    "pipeline_batch_duration_seconds_bucket",
    "pipeline_fact_rows_total",
    "pipeline_last_commit_timestamp_seconds",
}


def exported() -> tuple[set[str], set[str]]:
    """(series names, label names) the consumer exports after one batch and one retry."""
    metrics = Metrics()
    metrics.observe_batch(
        loaded=3,
        duplicates=1,
        rejected_by_reason={"invalid_json": 1},
        fact_rows=5,
        records=5,
        seconds=0.02,
    )
    metrics.set_lag({0: 4, 1: 0})
    metrics.retries.labels("kafka_commit").inc()  # as Pipeline._retry does
    text = generate_latest(metrics.registry).decode()
    names: set[str] = set()
    labels: set[str] = set()
    for family in text_string_to_metric_families(text):
        # Families without children yet (e.g. retries) still declare their type.
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
        for sample in family.samples:
            names.add(sample.name)
            labels.update(sample.labels)
    return names, labels


def strip_promql(expr: str) -> str:
    """The expression without strings, label matchers, ranges, grouping clauses, variables."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr, flags=re.I
    )
    return re.sub(r"\$\{?\w+\}?", " ", expr)


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (functions and keywords excluded)."""
    stripped = strip_promql(expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", stripped):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def label_names(expr: str) -> set[str]:
    """Label names used in matchers and in by/without/on/ignoring clauses."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    found = set()
    for matchers in re.findall(r"\{([^}]*)\}", expr):
        found.update(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        found.update(name.strip() for name in clause.split(",") if name.strip())
    return found


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    board = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target)
        for panel in panels(board["panels"])
        for target in panel.get("targets", [])
    ]


def rule_expressions() -> list[str]:
    """`expr:` lines of the Prometheus configuration and rule files (one line each)."""
    exprs = []
    for path in sorted(PROMETHEUS_DIR.glob("*.yml")):
        exprs += re.findall(r"^\s*expr:\s*(.+?)\s*$", path.read_text(), flags=re.M)
    return exprs


def test_the_promql_reader_finds_metrics_and_labels() -> None:
    """The expression reader used below separates metrics from functions, labels and ranges."""
    expr = (
        "histogram_quantile(0.95, sum by (le) (rate(pipeline_batch_duration_seconds_bucket"
        '{job="orders-consumer"}[$__rate_interval]))) / on (instance) '
        "(time() - pipeline_last_commit_timestamp_seconds > 0) and up"
    )
    assert metric_names(expr) == {
        "pipeline_batch_duration_seconds_bucket",
        "pipeline_last_commit_timestamp_seconds",
        "up",
    }
    assert label_names(expr) == {"le", "job", "instance"}


def test_every_dashboard_query_uses_exported_metric_and_label_names() -> None:
    """Each panel query names only series and labels the consumer exports."""
    names, labels = exported()
    targets = dashboard_targets()
    assert targets, "the dashboard has no queries"
    for title, target in targets:
        expr = target["expr"]
        used = metric_names(expr)
        assert used, f"{title}: no metric in {expr!r}"
        unknown = used - names - PROMETHEUS_SYNTHETIC
        assert not unknown, f"{title}: {sorted(unknown)} not exported by the consumer"
        bad_labels = label_names(expr) - labels - TARGET_LABELS - {"le"}
        assert not bad_labels, f"{title}: unknown labels {sorted(bad_labels)} in {expr!r}"
        legend_labels = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        assert legend_labels <= labels | TARGET_LABELS, f"{title}: legend {legend_labels}"


def test_prometheus_rules_use_exported_metric_names() -> None:
    """Each alerting rule expression names only series the consumer exports (or `up`)."""
    names, labels = exported()
    exprs = rule_expressions()
    assert exprs, "deploy/prometheus has no rule expressions"
    for expr in exprs:
        unknown = metric_names(expr) - names - PROMETHEUS_SYNTHETIC
        assert not unknown, f"{sorted(unknown)} not exported by the consumer: {expr}"
        assert label_names(expr) <= labels | TARGET_LABELS | {"le"}, expr
    config = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    for rule_file in re.findall(r"^\s*-\s*([\w.-]+\.yml)\b", config, flags=re.M):
        assert (PROMETHEUS_DIR / rule_file).is_file(), rule_file


def test_dashboard_covers_the_issue_panels() -> None:
    """Throughput, lag, rejects by reason, batch duration, fact rows and commit age are shown."""
    used = {name for _, target in dashboard_targets() for name in metric_names(target["expr"])}
    assert used >= REQUIRED_IN_DASHBOARD, REQUIRED_IN_DASHBOARD - used
    exprs = [target["expr"] for _, target in dashboard_targets()]
    assert any("histogram_quantile" in e and "_bucket" in e for e in exprs)
    assert any("by (outcome)" in e and "pipeline_records_total" in e for e in exprs)
    assert any("by (reason)" in e for e in exprs)


def test_dashboard_is_well_formed_for_grafana_provisioning() -> None:
    """Unique panel ids, a grid position each, and every query on the provisioned datasource."""
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"]
    uids = set(re.findall(r"^\s*uid:\s*(\S+)", _datasource_text(), flags=re.M))
    assert len(uids) == 1
    (uid,) = uids
    all_panels = list(panels(board["panels"]))
    ids = [panel["id"] for panel in all_panels]
    assert len(ids) == len(set(ids))
    for panel in all_panels:
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys(), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == uid, panel["title"]
        if panel.get("targets"):
            assert panel["datasource"]["uid"] == uid, panel["title"]


def _datasource_text() -> str:
    files = sorted(DATASOURCES.glob("*.yml"))
    if not files:
        pytest.fail("no Grafana datasource provisioning file")
    return "\n".join(path.read_text() for path in files)


def scrape_jobs() -> list[str]:
    """The job names of deploy/prometheus/prometheus.yml, in order."""
    text = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    return re.findall(r"^\s*-\s*job_name:\s*(\S+)", text, flags=re.M)


def test_dashboard_shows_one_warehouse_at_a_time_and_each_member() -> None:
    """A `job` variable offers every scrape job; each query is scoped to it (the file's and the
    lake's counts never add up), and per-member panels draw one line per instance."""
    board = json.loads(DASHBOARD.read_text())
    (variable,) = [v for v in board["templating"]["list"] if v["name"] == "job"]
    offered = [option["value"] for option in variable["options"]]
    assert offered == scrape_jobs()
    assert variable["current"]["value"] in offered
    for title, target in dashboard_targets():
        for selector in re.findall(r"\b(?:pipeline_\w+|up)\b(\{[^}]*\})?", target["expr"]):
            assert 'job="$job"' in selector, f"{title}: {target['expr']!r} is not scoped to $job"
    per_member = {
        name
        for _, target in dashboard_targets()
        if target.get("legendFormat") == "{{instance}}"
        and ("by (instance" in target["expr"] or "sum" not in target["expr"])
        for name in metric_names(target["expr"])
    }
    assert {
        "pipeline_records_total",
        "pipeline_consumer_lag",
        "pipeline_consumer_lag_seconds",
        "process_resident_memory_bytes",
        "pipeline_assigned_partitions",
        "pipeline_batch_duration_seconds_bucket",
        "up",
    } <= per_member, per_member


def test_lake_members_keep_their_service_name_as_instance() -> None:
    """The lake job names each member by its compose service, not by a container address."""
    text = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    lake = text[text.index("job_name: orders-consumer-lake") :]
    assert "dns_sd_configs" in lake
    assert re.search(r"source_labels:\s*\[__meta_dns_name\]\s*\n\s*target_label:\s*instance", lake)
    names = re.findall(r'"(consumer-lake-\d)"', lake)
    assert names == ["consumer-lake-1", "consumer-lake-2", "consumer-lake-3"]
