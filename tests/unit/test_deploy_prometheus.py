"""deploy/prometheus/ as Prometheus reads it, checked by its own ``promtool``: the configuration
and the rules load, the rules' unit tests (alerts_test.yml) pass, every alert has a case that
fires it and one that does not, and those cases are tight enough that moving any threshold or
``for:`` of alerts.yml by one step fails them.

(test_deploy_dashboard.py checks the names the rules use against the consumer's registry.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import promtool

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "alerts.yml"
RULE_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
#: A comparison with a number: the thresholds of the rules.
THRESHOLD = re.compile(r"(?<![=!<>])(==|!=|>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)(?![\w.])")
FOR = re.compile(r"^(\s*for:\s*)(\d+)m\s*$")
#: The evaluation interval of alerts_test.yml: the smallest step of a `for:` it can tell apart.
STEP_MINUTES = 1


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a promtool run, for an assertion message."""
    return result.stdout + result.stderr


def test_promtool_accepts_the_prometheus_configuration() -> None:
    """prometheus.yml loads, and with it the rule file it names."""
    result = promtool.run("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, ok(result)
    assert "1 rule files found" in result.stdout, ok(result)


def test_promtool_accepts_the_alert_rules() -> None:
    result = promtool.run("check", "rules", str(RULES))
    assert result.returncode == 0, ok(result)
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout, ok(result)


def test_the_alert_rules_pass_their_unit_tests() -> None:
    """`promtool test rules`: each alert fires on its series, at the time its `for:` allows,
    with its labels and summary, and stays silent on the others."""
    result = promtool.run("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, ok(result)
    assert "SUCCESS" in result.stdout, ok(result)


@dataclass(frozen=True)
class Rule:
    name: str
    expr_line: int
    for_line: int | None


def alert_rules() -> list[Rule]:
    """The alerting rules of alerts.yml, with the lines of their `expr:` and `for:`."""
    rules: list[Rule] = []
    name, expr_line, for_line = None, None, None
    lines = RULES.read_text().splitlines()
    for index, line in enumerate([*lines, "  - alert: end"]):
        if match := re.match(r"^\s*- alert:\s*(\S+)", line):
            if name is not None:
                assert expr_line is not None, f"{name} has no one-line expr"
                rules.append(Rule(name, expr_line, for_line))
            name, expr_line, for_line = match.group(1), None, None
        elif re.match(r"^\s*expr:", line):
            expr_line = index
        elif FOR.match(line):
            for_line = index
    return rules


def rule_test_cases() -> list[tuple[str, bool]]:
    """(alertname, whether some alert is expected) of each check of alerts_test.yml."""
    cases = []
    text = RULE_TESTS.read_text()
    for block in re.split(r"^\s*- eval_time:", text, flags=re.M)[1:]:
        name = re.search(r"^\s*alertname:\s*(\S+)", block, flags=re.M)
        assert name, block
        silent = re.search(r"^\s*exp_alerts:\s*\[\]\s*$", block, flags=re.M) is not None
        cases.append((name.group(1), not silent))
    return cases


def test_every_alert_has_a_case_that_fires_it_and_one_that_does_not() -> None:
    rules = {rule.name for rule in alert_rules()}
    assert len(rules) >= 8, rules
    cases = rule_test_cases()
    assert {name for name, _ in cases} == rules, (
        "alerts_test.yml tests other alerts than alerts.yml"
    )
    for rule in sorted(rules):
        assert (rule, True) in cases, f"no case of alerts_test.yml fires {rule}"
        assert (rule, False) in cases, f"no case of alerts_test.yml keeps {rule} silent"


def moved(number: str) -> list[str]:
    """The threshold one step up and one step down: 1 for an integer, else 4 %."""
    if re.fullmatch(r"-?\d+", number):
        return [str(int(number) + 1), str(int(number) - 1)]
    value = float(number)
    return [repr(round(value * 1.04, 9)), repr(round(value * 0.96, 9))]


def mutations() -> list[tuple[str, int, str]]:
    """(description, line, new line): each threshold and each `for:` of alerts.yml, moved."""
    lines = RULES.read_text().splitlines()
    found = []
    for rule in alert_rules():
        line = lines[rule.expr_line]
        for match in THRESHOLD.finditer(line):
            for number in moved(match.group(2)):
                new = f"{line[: match.start(2)]}{number}{line[match.end(2) :]}"
                found.append((f"{rule.name}: {match.group(0)} -> {number}", rule.expr_line, new))
        if rule.for_line is not None:
            duration = FOR.match(lines[rule.for_line])
            assert duration is not None
            head, minutes = duration.groups()
            for changed in (int(minutes) + STEP_MINUTES, int(minutes) - STEP_MINUTES):
                found.append(
                    (
                        f"{rule.name}: for {minutes}m -> {changed}m",
                        rule.for_line,
                        f"{head}{changed}m",
                    )
                )
    return found


def test_moving_any_threshold_or_duration_fails_the_rule_tests(tmp_path: Path) -> None:
    """The unit tests sit on each side of every threshold and `for:`: a rule changed by one
    step in either direction no longer passes them."""
    tool = promtool.promtool()
    original = RULES.read_text().splitlines()
    found = mutations()
    # Every rule has a threshold, and each threshold and duration moves both ways.
    assert {d.split(":")[0] for d, _, _ in found} == {r.name for r in alert_rules()}

    def survives(numbered: tuple[int, tuple[str, int, str]]) -> bool:
        number, (description, index, new) = numbered
        where = tmp_path / str(number)
        where.mkdir()
        shutil.copy(RULE_TESTS, where / RULE_TESTS.name)
        lines = list(original)
        lines[index] = new
        (where / RULES.name).write_text("\n".join(lines) + "\n")
        result = promtool.run("test", "rules", str(where / RULE_TESTS.name))
        if result.returncode != 0:  # an expectation failed, not the loading of the file
            assert "got:" in result.stderr, f"{description} with {tool}: {ok(result)}"
        return result.returncode == 0

    # promtool spends most of a run waiting, not computing: a few at a time.
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(survives, enumerate(found)))
    survivors = [d for (d, _, _), survived in zip(found, outcomes, strict=True) if survived]
    assert not survivors, f"alerts_test.yml still passes after: {survivors}"


@pytest.mark.parametrize(
    ("number", "expected"), [("50000", ["50001", "49999"]), ("0.05", ["0.052", "0.048"])]
)
def test_thresholds_move_by_one_step(number: str, expected: list[str]) -> None:
    assert moved(number) == expected
