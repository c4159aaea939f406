"""Policy test cases: expectations an ops repo keeps about its own classifier.

A case holds an ``[action]`` (the content of one action file) or a
``[[change]]`` (a whole change), and ``[expect]`` (tier, optionally the exact
reasons and whether it is refused). The same format drives opsvault's own
golden classifier tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from opsvault.errors import InvalidFileError, Problem
from opsvault.layout import action_path
from opsvault.policy.change import ChangedFile, ChangeKind
from opsvault.policy.classify import BaseState, ChangeVerdict, classify_change
from opsvault.vault.schema import parse_toml, schema_problems
from opsvault.vault.tier import Tier

CASE_ACTION_PATH = action_path("policy-test-case")


class InvalidCaseError(InvalidFileError):
    kind = "policy test case"


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    description: str
    changes: tuple[ChangedFile, ...]
    head_files: tuple[tuple[str, bytes], ...]
    tier: Tier
    reasons: tuple[str, ...] | None
    refused: bool


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    verdict: ChangeVerdict
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def parse_case(text: str | bytes, where: str) -> Case:
    """Return the Case in *text*; raise InvalidCaseError listing every problem."""
    import tomlkit

    data = parse_toml(text, where, InvalidCaseError)
    problems = schema_problems(data, "case")
    if problems:
        raise InvalidCaseError(where, problems)
    if "action" in data:
        content = tomlkit.dumps(data["action"]).encode()
        changes: tuple[ChangedFile, ...] = (
            ChangedFile(CASE_ACTION_PATH, ChangeKind.ADDED),
        )
        head_files: tuple[tuple[str, bytes], ...] = ((CASE_ACTION_PATH, content),)
    else:
        changes = tuple(
            ChangedFile(c["path"], ChangeKind(c["kind"])) for c in data["change"]
        )
        head_files = tuple(
            (c["path"], c["content"].encode()) for c in data["change"] if "content" in c
        )
        extra = [
            f"$.change[{i}].content"
            for i, c in enumerate(data["change"])
            if "content" in c and c["kind"] != "added"
        ]
        if extra:
            raise InvalidCaseError(
                where, [Problem(p, "content is only for added files") for p in extra]
            )
    expect = data["expect"]
    return Case(
        name=where,
        description=data.get("description", ""),
        changes=changes,
        head_files=head_files,
        tier=Tier.parse(expect["tier"]),
        reasons=tuple(expect["reasons"]) if "reasons" in expect else None,
        refused=expect.get("refused", False),
    )


def run_case(case: Case, base: BaseState) -> CaseResult:
    """Classify *case* against *base* and return how it differs from its expectations."""
    verdict = classify_change(case.changes, dict(case.head_files), base)
    failures: list[str] = []
    if verdict.tier is not case.tier:
        failures.append(f"tier: expected {case.tier.label}, got {verdict.tier.label}")
    if verdict.refused != case.refused:
        problems = "; ".join(
            p.render(f.path) for f in verdict.files for p in f.problems
        )
        failures.append(
            f"refused: expected {case.refused}, got {verdict.refused}{': ' + problems if problems else ''}"
        )
    if case.reasons is not None:
        got = tuple(r.render() for r in verdict.reasons)
        if got != case.reasons:
            failures.append(
                "reasons differ (- expected, + got):\n"
                + "\n".join(reasons_diff(case.reasons, got))
            )
    return CaseResult(case, verdict, tuple(failures))


def reasons_diff(expected: Sequence[str], got: Sequence[str]) -> list[str]:
    """Return the lines of a diff of two reason lists: ``"  "`` both, ``"- "`` expected only, ``"+ "`` got only.

    Reasons are in order, so a reordering shows as a removal and an addition.
    """
    lines: list[str] = []
    matcher = SequenceMatcher(a=list(expected), b=list(got), autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            lines.extend(f"  {r}" for r in expected[a0:a1])
            continue
        lines.extend(f"- {r}" for r in expected[a0:a1])
        lines.extend(f"+ {r}" for r in got[b0:b1])
    return lines
