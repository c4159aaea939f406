"""`vault policy suggest` over records written by real ticks (local mode), and its PR."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsvault.cli import cli
from opsvault.dispatcher.runner import RecordingRunner
from opsvault.messages import RunResult
from opsvault.policy.parse import parse_policy
from tests.cli.jsondoc import assert_matches_doc
from tests.dispatcher.harness import HOOK, NOOP, T0
from tests.dispatcher.local_harness import LocalHarness, make_local_harness

AT = "2026-11-22T00:00:00+0000"  # a day after the harness's ticks


def suggesting(text: str) -> str:
    text = text.replace('noop = "low"', 'noop = "medium"')
    return text + '\n[suggest]\nruns = 2\nwindow = "30d"\n'


def ran(outcome: str, reason: str, code: int) -> RunResult:
    """A runner's result at the harness's clock (the runner stamps the record's times)."""
    start = T0.timestamp()
    return RunResult(outcome, reason, code, None, start, start + 1, "")


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[LocalHarness]:
    harness = make_local_harness(tmp_path, suggesting)
    runner = harness.runner
    assert isinstance(runner, RecordingRunner)
    runner.results.extend([ran("succeeded", "ok", 0), ran("succeeded", "ok", 0)])
    for i in (1, 2):
        number = harness.propose(f"noop-{i}", NOOP.format(msg=f"run {i}"))
        harness.merge_as("bob", number)
    report = harness.tick()
    assert [d.event for d in report.decisions].count("succeeded") == 2, report
    number = harness.propose("hook-1", HOOK.format(n=1))
    harness.merge_as("bob", number)
    runner.results.append(ran("failed", "exit-nonzero", 1))
    report = harness.tick()
    assert "failed" in [d.event for d in report.decisions], report
    yield harness
    harness.close()


def _suggest(vault: LocalHarness, *args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(
        cli,
        [
            "policy",
            "suggest",
            "--ops",
            str(vault.repo.path),
            "--at",
            AT,
            "--json",
            *args,
        ],
        env={"USER": "alice"},
    )
    data = json.loads(result.output)
    assert_matches_doc("policy suggest", data)
    return result.exit_code, data


def test_clean_medium_runs_suggest_low_and_a_failure_suggests_high(
    vault: LocalHarness,
) -> None:
    code, data = _suggest(vault)
    assert code == 0 and data["schema"] == "opsvault.policy.suggest/1"
    found = {s["formula"]: s for s in data["suggestions"]}  # type: ignore[attr-defined]
    assert (found["noop"]["current"], found["noop"]["suggested"]) == ("medium", "low")
    assert [r["action"] for r in found["noop"]["runs"]] == ["noop-1", "noop-2"]
    assert all(r["record"].startswith("vault/fired/") for r in found["noop"]["runs"])
    hook = found["http-hook"]
    assert (hook["current"], hook["suggested"]) == ("medium", "high")
    assert [(r["action"], r["outcome"]) for r in hook["runs"]] == [("hook-1", "failed")]


def test_outside_the_window_nothing_is_suggested(vault: LocalHarness) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "policy",
            "suggest",
            "--ops",
            str(vault.repo.path),
            "--at",
            "2027-01-30T00:00:00+0000",
        ],
    )
    assert result.exit_code == 0
    assert "no tier changes suggested" in result.output


def test_the_suggested_policy_is_written_for_policy_diff(
    vault: LocalHarness, tmp_path: Path
) -> None:
    out = tmp_path / "suggested.toml"
    code, _ = _suggest(vault, "--output", str(out))
    assert code == 0
    policy = parse_policy(out.read_text())
    assert dict(policy.formulas)["noop"].label == "low"
    assert dict(policy.formulas)["http-hook"].label == "high"
    assert "# Formula -> tier." in out.read_text()  # the file is edited, not rewritten
    old = tmp_path / "old.toml"
    old.write_bytes(vault.main_file("vault/policy.toml") or b"")
    diff = CliRunner().invoke(
        cli, ["policy", "diff", str(old), str(out), "--ops", str(vault.repo.path)]
    )
    assert diff.exit_code == 0, diff.output
    assert "noop" in diff.output


def test_open_pr_proposes_a_high_tier_policy_change_listing_the_runs(
    vault: LocalHarness,
) -> None:
    code, data = _suggest(vault, "--open-pr")
    assert code == 0
    pr = data["pr"]
    assert isinstance(pr, dict) and pr["branch"].startswith("vault/policy-suggest-")
    pull = vault.pull(pr["number"])
    assert "noop-1" in pull.body and "vault policy diff" in pull.body
    assert "| " in pull.body and "hook-1" in pull.body
    # never applied: main's policy is unchanged, and the change is high tier
    assert b'noop = "medium"' in (vault.main_file("vault/policy.toml") or b"")
    classified = CliRunner().invoke(
        cli,
        [
            "classify",
            "--base",
            "main",
            "--head",
            pr["branch"],
            "--ops",
            str(vault.repo.path),
            "--json",
        ],
    )
    verdict = json.loads(classified.output)
    assert verdict["tier"] == "high", classified.output
    # the dispatcher leaves it for an admin: nothing merged by a tick
    vault.tick()
    assert not vault.pull(pr["number"]).merged


def test_suggest_settings_are_validated_with_clear_errors() -> None:
    base = Path("ops-template/vault/policy.toml").read_text()
    with pytest.raises(Exception) as bad_window:
        parse_policy(base + '\n[suggest]\nwindow = "30x"\n')
    assert "$.suggest.window" in str(bad_window.value)
    with pytest.raises(Exception) as bad_runs:
        parse_policy(base + "\n[suggest]\nruns = 0\n")
    assert "$.suggest.runs" in str(bad_runs.value)
    defaults = parse_policy(base).suggest
    assert (defaults.runs, defaults.window.days) == (20, 30)


def test_an_unknown_branch_is_a_git_error_in_the_envelope(vault: LocalHarness) -> None:
    code, data = _suggest(vault, "--base", "no-such-branch")
    assert code == 1 and data["error"]["code"] == "git"  # type: ignore[index]
