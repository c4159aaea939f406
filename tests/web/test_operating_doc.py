"""docs/operating.md's metrics table, alert rules and log example match the code."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from opsvault.dispatcher.secrets import RedactingFilter
from opsvault.web.logs import KEYS, JsonLinesFormatter
from opsvault.web.metrics import Metrics
from tests.web.support import samples

DOC = Path(__file__).resolve().parents[2] / "docs" / "operating.md"
SELECTOR = re.compile(r"(opsvault_[a-z_]+)(?:\{([^}]*)\})?")


def _section(heading: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/operating.md has no '## {heading}' section"
    return match.group(1)


def _exported() -> dict[str, set[str]]:
    """Every sample name /metrics exports, with the label names it carries."""
    metrics = Metrics()
    metrics.watch_webhook(lambda: (0, 0))
    metrics.forge_request("GET", "/user", 200)
    metrics.decisions.labels("merged", "low").inc()
    found: dict[str, set[str]] = {}
    for name, labels in samples(metrics.render().decode()):
        found.setdefault(name, set()).update(label for label, _ in labels)
    return found


def _rules() -> list[dict[str, Any]]:
    (block,) = re.findall(r"```yaml\n(.*?)```", _section("Alert rules"), re.S)
    data = yaml.safe_load(block)
    rules: list[dict[str, Any]] = [r for g in data["groups"] for r in g["rules"]]
    return rules


def test_the_alert_rules_parse_and_name_only_exported_metrics_and_labels() -> None:
    exported = _exported()
    rules = _rules()
    names = {r["alert"] for r in rules}
    assert {
        "OpsvaultTickStalled",
        "OpsvaultTickFailuresRising",
        "OpsvaultWaitingPastDeadline",
    } <= names
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        used = SELECTOR.findall(rule["expr"])
        assert used, f"{rule['alert']} names no opsvault metric"
        for metric, selector in used:
            assert metric in exported, f"{rule['alert']}: {metric} is not exported"
            for label in re.findall(r"(\w+)\s*=~?", selector):
                assert label in exported[metric], (
                    f"{rule['alert']}: {metric} has no {label!r}"
                )


def test_the_stall_rule_uses_the_timestamp_and_the_failure_rules_the_counters() -> None:
    by_name = {r["alert"]: r["expr"] for r in _rules()}
    assert (
        "opsvault_last_successful_tick_timestamp_seconds"
        in by_name["OpsvaultTickStalled"]
    )
    assert "opsvault_ticks_total" in by_name["OpsvaultTickFailuresRising"]
    assert "opsvault_actions_past_deadline" in by_name["OpsvaultWaitingPastDeadline"]


def test_the_metrics_table_lists_exactly_the_exported_metrics() -> None:
    documented = set(
        re.findall(r"^\| `(opsvault_[a-z_]+)` \|", _section("Metrics"), re.M)
    )
    families = {
        re.sub(r"_(bucket|sum|count|created)$", "", name)
        for name in _exported()
        if not name.endswith("_created")
    }
    assert documented == families


def test_the_log_example_has_the_stable_keys() -> None:
    (block,) = re.findall(r"```json\n(.*?)```", _section("Logs"), re.S)
    assert tuple(json.loads(block)) == KEYS


def test_a_log_line_is_one_json_object_with_the_secret_redacted() -> None:
    handler = logging.Handler()
    handler.setFormatter(JsonLinesFormatter())
    handler.addFilter(RedactingFilter(lambda text: text.replace("hunter2", "***")))
    try:
        raise RuntimeError("token hunter2 leaked\nsecond line")
    except RuntimeError:
        record = logging.LogRecord(
            "opsvault.x", logging.ERROR, __file__, 1, "with %s", ("hunter2",), None
        )
        record.exc_info = sys.exc_info()
    assert handler.filter(record)
    line = handler.format(record)
    assert "\n" not in line and "hunter2" not in line
    data = json.loads(line)
    assert tuple(data) == KEYS
    assert (data["level"], data["logger"], data["message"]) == (
        "ERROR",
        "opsvault.x",
        "with ***",
    )
    assert "RuntimeError: token *** leaked" in data["exc"]
    assert data["ts"].endswith("Z")
