"""`vault policy test` as CI reads it: run every case (a malformed one is that case's error), render text, JSON, JUnit XML or TAP.

Pure: the caller reads the files (``CaseInput``: the name to show and the bytes,
or the problems met reading them) and prints what these functions return.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from xml.etree import ElementTree

from opsvault.errors import InvalidFileError, Problem
from opsvault.policy.cases import parse_case, run_case
from opsvault.policy.classify import BaseState

FORMATS = ("text", "json", "junit", "tap")
SUITE = "vault policy test"


class CaseStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"  # the case ran and an expectation does not hold
    ERROR = "error"  # the case could not run: it is not a valid case file


@dataclass(frozen=True, slots=True)
class CaseInput:
    name: str
    content: bytes | None = None
    problems: tuple[Problem, ...] = ()  # why it could not be read (content None)


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    name: str
    status: CaseStatus
    description: str = ""
    failures: tuple[str, ...] = ()  # for FAIL: one entry per expectation missed
    problems: tuple[Problem, ...] = ()  # for ERROR: every problem of the file

    @property
    def messages(self) -> tuple[str, ...]:
        """What went wrong, one entry per failure or problem (``file: $.path: message``)."""
        if self.status is CaseStatus.ERROR:
            return tuple(p.render(self.name) for p in self.problems)
        return self.failures


@dataclass(frozen=True, slots=True)
class CaseRun:
    outcomes: tuple[CaseOutcome, ...]
    where: str  # what was asked for, named in the message when it holds no case

    def count(self, status: CaseStatus) -> int:
        return sum(1 for o in self.outcomes if o.status is status)

    @property
    def ok(self) -> bool:
        """Every case passed, and there was at least one."""
        return bool(self.outcomes) and all(
            o.status is CaseStatus.PASS for o in self.outcomes
        )

    @property
    def empty_message(self) -> str:
        return (
            f"{self.where}: no policy test cases (*.toml) here; add one "
            "(docs/policy.md, 'Policy tests') or name case files"
        )


def run_cases(inputs: Iterable[CaseInput], base: BaseState, where: str) -> CaseRun:
    """Run every case in *inputs* against *base*; a file that is not a valid case is that case's ERROR."""
    outcomes: list[CaseOutcome] = []
    for item in inputs:
        if item.content is None:
            outcomes.append(
                CaseOutcome(item.name, CaseStatus.ERROR, problems=item.problems)
            )
            continue
        try:
            case = parse_case(item.content, item.name)
        except InvalidFileError as exc:
            outcomes.append(
                CaseOutcome(item.name, CaseStatus.ERROR, problems=exc.problems)
            )
            continue
        result = run_case(case, base)
        outcomes.append(
            CaseOutcome(
                item.name,
                CaseStatus.PASS if result.passed else CaseStatus.FAIL,
                case.description,
                result.failures,
            )
        )
    return CaseRun(tuple(outcomes), where)


def render_case_run(run: CaseRun, fmt: str) -> str:
    """Return *run* rendered as *fmt* (text, junit or tap; json: ``case_run_data``)."""
    if fmt == "junit":
        return render_junit(run)
    if fmt == "tap":
        return render_tap(run)
    return render_text(run)


def _summary(run: CaseRun) -> str:
    errors = run.count(CaseStatus.ERROR)
    return (
        f"{run.count(CaseStatus.PASS)} passed, {run.count(CaseStatus.FAIL)} failed"
        + (f", {errors} error(s)" if errors else "")
    )


def render_text(run: CaseRun) -> str:
    if not run.outcomes:
        return run.empty_message
    lines: list[str] = []
    for o in run.outcomes:
        label = {
            CaseStatus.PASS: "PASS",
            CaseStatus.FAIL: "FAIL",
            CaseStatus.ERROR: "ERROR",
        }
        lines.append(
            f"{label[o.status]} {o.name}{': ' + o.description if o.description else ''}"
        )
        for message in o.messages:
            lines.extend(f"     {line}" for line in message.splitlines())
    lines.append(_summary(run))
    return "\n".join(lines)


def case_run_data(run: CaseRun) -> dict[str, Any]:
    """The run as `vault policy test --format json` prints it (inside the envelope, docs/json.md)."""
    data: dict[str, Any] = {
        "passed": run.count(CaseStatus.PASS),
        "failed": run.count(CaseStatus.FAIL),
        "errors": run.count(CaseStatus.ERROR),
        "cases": [
            {
                "case": o.name,
                "status": o.status.value,
                "passed": o.status is CaseStatus.PASS,
                "description": o.description,
                "failures": list(o.failures),
                "problems": [
                    {"path": p.path, "message": p.message} for p in o.problems
                ],
            }
            for o in run.outcomes
        ],
    }
    if not run.outcomes:
        data["message"] = run.empty_message
    return data


def render_junit(run: CaseRun) -> str:
    """JUnit XML, as CI systems read it: one testcase per case; ERROR is <error>, FAIL is <failure>."""
    suites = ElementTree.Element("testsuites", name=SUITE)
    suite = ElementTree.SubElement(
        suites,
        "testsuite",
        name=SUITE,
        tests=str(len(run.outcomes)),
        failures=str(run.count(CaseStatus.FAIL)),
        errors=str(run.count(CaseStatus.ERROR)),
        skipped="0",
    )
    if not run.outcomes:
        ElementTree.SubElement(suite, "system-out").text = run.empty_message
    for o in run.outcomes:
        case = ElementTree.SubElement(
            suite, "testcase", classname="policy-tests", name=o.name
        )
        if o.status is CaseStatus.PASS:
            continue
        tag = "failure" if o.status is CaseStatus.FAIL else "error"
        first = o.messages[0].splitlines()[0] if o.messages else o.status.value
        node = ElementTree.SubElement(case, tag, message=first, type=o.status.value)
        node.text = "\n".join(o.messages)
    ElementTree.indent(suites)
    body = ElementTree.tostring(suites, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}'


def _yaml_block(key: str, lines: Sequence[str]) -> list[str]:
    # A YAML literal block with explicit indentation: a line starting with spaces
    # (a diff's context line) cannot change it, and no content can end the block.
    return [f"  {key}: |2-", *(f"    {line}" for line in lines)]


def render_tap(run: CaseRun) -> str:
    """TAP version 14: ``ok``/``not ok`` per case; what went wrong in a YAML diagnostic block."""
    lines = ["TAP version 14", f"1..{len(run.outcomes)}"]
    if not run.outcomes:
        lines[1] += f" # SKIP {_tap_text(run.empty_message)}"
    for number, o in enumerate(run.outcomes, start=1):
        ok = "ok" if o.status is CaseStatus.PASS else "not ok"
        lines.append(f"{ok} {number} - {_tap_text(o.name)}")
        if o.status is CaseStatus.PASS:
            continue
        lines.append("  ---")
        lines.append(f"  status: {o.status.value}")
        lines.extend(
            _yaml_block("message", [ln for m in o.messages for ln in m.splitlines()])
        )
        lines.append("  ...")
    return "\n".join(lines)


def _tap_text(text: str) -> str:
    # '#' starts a directive in a TAP test line; keep names literal.
    return text.replace("\\", "\\\\").replace("#", "\\#").replace("\n", " ")
