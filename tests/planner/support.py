"""Helpers for planner tests: facts from a small TOML file, and a readable report."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from opsvault.planner.check import Finding
from opsvault.planner.model import Change, IssueRef, IssueState, VaultFacts


@dataclass(frozen=True, slots=True)
class Facts:
    issues: dict[IssueRef, IssueState]
    vault: VaultFacts
    today: date


def parse_ref(text: str) -> IssueRef:
    repo, _, number = text.rpartition("#")
    return IssueRef(repo or None, int(number))


def load_facts(path: Path) -> Facts:
    return parse_facts(path.read_text(encoding="utf-8"))


def parse_facts(text: str) -> Facts:
    data = tomllib.loads(text)
    vault = data.get("vault", {})
    return Facts(
        issues={parse_ref(k): IssueState(v) for k, v in data.get("issues", {}).items()},
        vault=VaultFacts(
            **{
                name: frozenset(vault.get(name, ()))
                for name in (
                    "pending",
                    "running",
                    "fired",
                    "rejected",
                    "existing_paths",
                )
            }
        ),
        today=data["today"],
    )


def render_report(changes: Iterable[Change], findings: Iterable[Finding]) -> str:
    lines = ["# update_plan changes"]
    lines += [f"{c.line}: {c.kind}: {c.reason}" for c in changes] or ["(none)"]
    lines += ["", "# check_plan findings (on the input)"]
    lines += [f.render() for f in findings] or ["(none)"]
    return "\n".join(lines) + "\n"
