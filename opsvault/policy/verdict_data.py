"""Plain-data views of classification results, shared by `--json` output and records."""

from __future__ import annotations

from typing import Any

from opsvault.errors import Problem
from opsvault.policy.action import Classification
from opsvault.policy.classify import ChangeVerdict, FileVerdict


def problems_data(problems: tuple[Problem, ...]) -> list[dict[str, str]]:
    return [{"path": p.path, "message": p.message} for p in problems]


def classification_data(classification: Classification) -> dict[str, Any]:
    return {
        "tier": classification.tier.label,
        "reasons": [
            {"tier": r.tier.label, "source": str(r.source), "detail": r.detail}
            for r in classification.reasons
        ],
    }


def file_verdict_data(verdict: FileVerdict) -> dict[str, Any]:
    return {
        "path": verdict.path,
        "kind": str(verdict.kind),
        **classification_data(verdict.classification),
        "action_id": verdict.action.id if verdict.action else None,
        "protected": verdict.protected,
        "valid": not verdict.problems,
        "refused": bool(verdict.problems),
        "problems": problems_data(verdict.problems),
    }


def change_verdict_data(verdict: ChangeVerdict) -> dict[str, Any]:
    return {
        "tier": verdict.tier.label,
        "refused": verdict.refused,
        "protected": verdict.protected,
        "files": [file_verdict_data(f) for f in verdict.files],
    }
