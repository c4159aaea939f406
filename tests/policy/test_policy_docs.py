"""docs/policy.md's examples: the freeze windows parse as shown, and the `vault policy test` session is real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from opsvault._resources import data_dir
from opsvault.cli import cli
from tests.cli.conftest import template_files

DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
TEMPLATE = (data_dir("ops-template") / "vault" / "policy.toml").read_text()


def _section(heading: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_the_freeze_examples_parse_to_what_the_text_says() -> None:
    from opsvault.policy.parse import parse_policy

    (block,) = re.findall(r"```toml\n(.*?)```", _section("Freeze windows"), re.S)
    year_end, weekend = parse_policy(TEMPLATE + "\n" + block).freezes
    assert year_end.name == "year-end" and year_end.exempt == {"noop"}
    assert weekend.weekly is not None and weekend.time_zone == "Europe/Berlin"


def test_the_policy_test_session_is_what_the_command_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ops = tmp_path / "ops"
    for name, content in template_files().items():
        (ops / name).parent.mkdir(parents=True, exist_ok=True)
        (ops / name).write_bytes(
            content if isinstance(content, bytes) else content.encode()
        )
    cases = ops / "vault" / "policy-tests"
    for gone in ("noop-is-low.toml", "policy-edit-is-high.toml"):
        (cases / gone).unlink()
    hook = cases / "destructive-hook-is-high.toml"
    hook.write_text(
        hook.read_text().replace("rule 'destructive-hook'", "rule 'destructive'")
    )
    (cases / "typo.toml").write_text(
        '[action]\nformula = "noop"\ncontext = "x"\n[expect]\ntier = "lowest"\n'
    )
    (session,) = re.findall(
        r"```\n\$ vault policy test\n(.*?)```",
        _section("Keeping policy under test"),
        re.S,
    )
    monkeypatch.chdir(ops)
    result = CliRunner().invoke(cli, ["policy", "test"])
    assert result.exit_code == 1
    assert result.output == session
