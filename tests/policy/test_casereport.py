"""`vault policy test` results: a malformed case is that case's error; text, JSON, JUnit and TAP; reason diffs."""

from __future__ import annotations

from xml.etree import ElementTree

import yaml

from opsvault._resources import data_dir
from opsvault.errors import Problem
from opsvault.policy.casereport import (
    CaseInput,
    CaseRun,
    CaseStatus,
    case_run_data,
    render_junit,
    render_tap,
    render_text,
    run_cases,
)
from opsvault.policy.cases import reasons_diff
from opsvault.policy.classify import BaseState
from opsvault.policy.parse import parse_policy
from opsvault.snapshot import load_builtin_formulas

POLICY = (data_dir("ops-template") / "vault" / "policy.toml").read_bytes()
BASE = BaseState(parse_policy(POLICY), load_builtin_formulas())

PASSING = b'[action]\nformula = "noop"\ncontext = "x"\n[expect]\ntier = "low"\n'
FAILING = PASSING.replace(b'"low"', b'"high"')
WRONG_REASONS = b"""description = "a delete is high"
[action]
formula = "http-hook"
context = "purge"
secrets = ["HOOK_TOKEN"]
params = { url = "https://cdn.example.org/purge", method = "DELETE" }
[expect]
tier = "high"
reasons = ["medium: formula 'http-hook' has blast_radius medium", "high: rule 'destructive' matches"]
"""
MALFORMED = b'[action]\nformula = "noop"\n[expect]\ntier = "lowest"\n'
NOT_TOML = b"[action\n"


def run(*cases: tuple[str, bytes]) -> CaseRun:
    return run_cases(
        [CaseInput(name, content) for name, content in cases], BASE, "cases"
    )


def test_a_malformed_case_is_its_own_error_and_the_others_still_run() -> None:
    result = run(
        ("a.toml", PASSING),
        ("b.toml", MALFORMED),
        ("c.toml", NOT_TOML),
        ("d.toml", FAILING),
    )
    assert [o.status for o in result.outcomes] == [
        CaseStatus.PASS,
        CaseStatus.ERROR,
        CaseStatus.ERROR,
        CaseStatus.FAIL,
    ]
    malformed = result.outcomes[1]
    assert any(p.path == "$.expect.tier" for p in malformed.problems)
    assert any(m.startswith("b.toml: $.expect.tier: ") for m in malformed.messages)
    assert "TOML syntax error" in result.outcomes[2].messages[0]
    assert result.outcomes[3].failures == ("tier: expected high, got low",)
    assert not result.ok
    text = render_text(result)
    assert "ERROR b.toml" in text
    assert text.endswith("1 passed, 1 failed, 2 error(s)")


def test_a_file_that_could_not_be_read_is_an_error_too() -> None:
    result = run_cases(
        [CaseInput("big.toml", problems=(Problem("$", "file is too big"),))],
        BASE,
        "cases",
    )
    assert result.outcomes[0].status is CaseStatus.ERROR
    assert result.outcomes[0].messages == ("big.toml: $: file is too big",)


def test_a_failed_reasons_expectation_is_a_diff() -> None:
    (outcome,) = run(("r.toml", WRONG_REASONS)).outcomes
    assert outcome.status is CaseStatus.FAIL
    (failure,) = outcome.failures
    assert failure.splitlines() == [
        "reasons differ (- expected, + got):",
        "  medium: formula 'http-hook' has blast_radius medium",
        "- high: rule 'destructive' matches",
        "+ high: rule 'destructive-hook' matches",
    ]


def test_reasons_diff_keeps_order_and_shows_only_what_moved() -> None:
    assert reasons_diff(["a", "b", "c"], ["a", "c", "d"]) == [
        "  a",
        "- b",
        "  c",
        "+ d",
    ]
    assert reasons_diff([], ["x"]) == ["+ x"]
    assert reasons_diff(["b", "a"], ["a", "b"]) in (
        ["- b", "  a", "+ b"],
        ["+ a", "  b", "- a"],
    )


def test_json_names_each_case_status_failures_and_problems() -> None:
    data = case_run_data(run(("a.toml", PASSING), ("b.toml", MALFORMED)))
    assert (data["passed"], data["failed"], data["errors"]) == (1, 0, 1)
    a, b = data["cases"]
    assert a == {
        "case": "a.toml",
        "status": "pass",
        "passed": True,
        "description": "",
        "failures": [],
        "problems": [],
    }
    assert b["status"] == "error" and b["passed"] is False
    assert {"path": "$.expect.tier", "message": b["problems"][-1]["message"]} in b[
        "problems"
    ]


def test_junit_has_a_testcase_per_case_with_failure_and_error_elements() -> None:
    xml = render_junit(
        run(("a.toml", PASSING), ("b.toml", MALFORMED), ("r.toml", WRONG_REASONS))
    )
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ElementTree.fromstring(xml)
    (suite,) = root.iter("testsuite")
    assert suite.attrib["tests"] == "3"
    assert (suite.attrib["failures"], suite.attrib["errors"]) == ("1", "1")
    cases = {c.attrib["name"]: c for c in suite.iter("testcase")}
    assert list(cases["a.toml"]) == []
    error = cases["b.toml"].find("error")
    assert error is not None and "b.toml: $.expect.tier" in (error.text or "")
    failure = cases["r.toml"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "reasons differ (- expected, + got):"
    assert "+ high: rule 'destructive-hook' matches" in (failure.text or "")


def test_junit_escapes_what_a_case_file_says() -> None:
    hostile = PASSING.replace(b'"x"', b'"</failure><x>&"').replace(b'"low"', b'"high"')
    hostile = b'description = "<script>&"\n' + hostile
    root = ElementTree.fromstring(render_junit(run(("<h>.toml", hostile))))
    (case,) = root.iter("testcase")
    assert case.attrib["name"] == "<h>.toml"


def test_tap_is_version_14_with_yaml_diagnostics() -> None:
    tap = render_tap(
        run(("a.toml", PASSING), ("r.toml", WRONG_REASONS), ("b #1.toml", MALFORMED))
    )
    lines = tap.splitlines()
    assert lines[:3] == ["TAP version 14", "1..3", "ok 1 - a.toml"]
    assert "not ok 2 - r.toml" in lines
    assert r"not ok 3 - b \#1.toml" in lines
    start = lines.index("not ok 2 - r.toml") + 1
    end = lines.index("  ...", start)
    assert lines[start] == "  ---"
    diagnostics = yaml.safe_load("\n".join(lines[start + 1 : end]))
    assert diagnostics["status"] == "fail"
    assert diagnostics["message"].splitlines()[1:] == [
        "  medium: formula 'http-hook' has blast_radius medium",
        "- high: rule 'destructive' matches",
        "+ high: rule 'destructive-hook' matches",
    ]


def test_no_cases_is_a_clear_message_in_every_format() -> None:
    empty = run()
    assert not empty.ok
    message = "cases: no policy test cases (*.toml) here; add one"
    assert render_text(empty).startswith(message)
    assert case_run_data(empty)["message"].startswith(message)
    assert render_tap(empty).splitlines()[1].startswith("1..0 # SKIP cases: no policy")
    assert message in render_junit(empty)
