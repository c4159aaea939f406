"""`vault audit verify`: text and the JSON envelope (docs/json.md), exit 1 on a break."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from opsvault.cli import cli
from tests.audit.tamper import open_raw, push_direct
from tests.cli.jsondoc import assert_matches_doc
from tests.dispatcher.harness import NOOP
from tests.dispatcher.local_harness import LocalHarness, make_local_harness


def _fired(tmp_path: Path) -> LocalHarness:
    vault = make_local_harness(tmp_path)
    vault.propose("noop-cli-1", NOOP.format(msg="hi"))
    assert vault.tick().ok
    return vault


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["audit", "verify", *args])
    return result.exit_code, result.output


def test_a_clean_history_verifies_in_text_and_json(tmp_path: Path) -> None:
    vault = _fired(tmp_path)
    code, out = _run("--ops", str(vault.repo.path))
    assert code == 0, out
    assert "2 record(s)" in out and "2 chained" in out and out.rstrip().endswith("ok")
    code, out = _run("--ops", str(vault.repo.path), "--json")
    data = json.loads(out)
    assert code == 0 and data["ok"] and data["records"] == 2 and data["anchors"] == 1
    assert_matches_doc("audit verify", data)


def test_a_break_exits_1_and_names_the_commit_and_record(tmp_path: Path) -> None:
    vault = _fired(tmp_path)
    sneaky = push_direct(
        open_raw(vault.repo.path),
        {"vault/actions/noop-sneaky-1.toml": NOOP.format(msg="x").encode()},
        "sneak it in",
    )
    code, out = _run("--ops", str(vault.repo.path), "--offline")
    assert code == 1
    assert f"break: {sneaky[:12]} vault/actions/noop-sneaky-1.toml: direct-push" in out
    code, out = _run("--ops", str(vault.repo.path), "--json")
    data = json.loads(out)
    assert code == 1 and not data["ok"]
    assert [b["kind"] for b in data["breaks"]] == ["direct-push"]
    assert data["breaks"][0]["commit"] == sneaky
    assert_matches_doc("audit verify", data)


def test_since_reads_only_later_commits_and_continues_the_chain(tmp_path: Path) -> None:
    vault = _fired(tmp_path)
    vault.propose("noop-cli-2", NOOP.format(msg="again"))
    assert vault.tick().ok
    code, out = _run("--ops", str(vault.repo.path), "--since", "2100-01-01", "--json")
    data = json.loads(out)
    assert code == 0 and data["records"] == 0 and data["commits"] == 0
    code, out = _run("--ops", str(vault.repo.path), "--since", "1970-01-02", "--json")
    assert code == 0 and json.loads(out)["records"] == 4


def test_a_bad_since_is_a_clear_error(tmp_path: Path) -> None:
    vault = _fired(tmp_path)
    code, out = _run("--ops", str(vault.repo.path), "--since", "yesterday", "--json")
    data = json.loads(out)
    assert code == 78 and data["error"]["code"] == "config"
    assert "--since 'yesterday'" in data["error"]["message"]
    assert_matches_doc("audit verify", data)
