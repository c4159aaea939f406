"""docs/lifecycle.md lists every outcome and reason code the dispatcher can record."""

from __future__ import annotations

import re
from pathlib import Path

from opsvault.dispatcher import fire, pulls
from opsvault.dispatcher.records import Outcome
from opsvault.dispatcher.state import Refusal
from opsvault.dispatcher.types import Reason

DOC = (Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md").read_text()


def documented_rows() -> set[tuple[str, str]]:
    return set(
        re.findall(r"^\| `([a-z-]+)` \| \w+ \| `([a-z-]+)` \|", DOC, re.MULTILINE)
    )


def test_every_outcome_is_documented() -> None:
    outcomes = {outcome for outcome, _reason in documented_rows()}
    assert outcomes == {str(o) for o in Outcome}


def test_every_reason_code_is_documented() -> None:
    reasons = {reason for _outcome, reason in documented_rows()}
    assert {str(r) for r in Refusal} <= reasons
    assert {str(r) for r in Reason} <= reasons
    for module in (fire, pulls):
        source = Path(module.__file__ or "").read_text()
        for code in re.findall(r'reason="([a-z-]+)"', source) + re.findall(
            r'Outcome\.\w+, "([a-z-]+)"', source
        ):
            assert code in reasons, (
                f"{code} ({module.__name__}) is not in docs/lifecycle.md"
            )
