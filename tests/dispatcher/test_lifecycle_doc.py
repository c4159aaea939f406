"""docs/lifecycle.md lists exactly the outcomes and reason codes the dispatcher can record."""

from __future__ import annotations

import re
from pathlib import Path

from opsvault.dispatcher.reasons import ReasonCode
from opsvault.dispatcher.records import Outcome

DOC = (Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md").read_text()


def documented_rows() -> set[tuple[str, str]]:
    return set(
        re.findall(r"^\| `([a-z-]+)` \| \w+ \| `([a-z-]+)` \|", DOC, re.MULTILINE)
    )


def test_every_outcome_is_documented() -> None:
    outcomes = {outcome for outcome, _reason in documented_rows()}
    assert outcomes == {str(o) for o in Outcome}


def test_the_doc_lists_exactly_the_reason_codes() -> None:
    reasons = {reason for _outcome, reason in documented_rows()}
    assert reasons == {str(r) for r in ReasonCode}


def test_a_record_holds_a_reason_code_and_nothing_else() -> None:
    from opsvault.dispatcher.records import ResultRecord, parse_record, render_record
    from opsvault.errors import InvalidFileError

    for code in ReasonCode:
        raw = render_record(ResultRecord(id="a-1", outcome=Outcome.DONE, reason=code))
        assert f'"reason": "{code.value}"'.encode() in raw  # the value on main
        assert parse_record(raw).reason is code
    unknown = raw.replace(b'"reason": "deadline-passed"', b'"reason": "because"')
    try:
        parse_record(unknown, "x.result.json")
    except InvalidFileError as exc:
        assert "unknown reason code 'because'" in str(exc)
    else:
        raise AssertionError("an unknown reason code was accepted")
