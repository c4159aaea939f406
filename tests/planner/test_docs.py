"""The examples in docs/planner.md are run, so the page cannot drift."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from opsvault.config import load_settings
from opsvault.planner.check import check_plan
from opsvault.planner.model import StatusWord, objectives
from opsvault.planner.render import parse_plan, render_plan
from opsvault.planner.update import update_plan

from .support import parse_facts

DOC = (Path(__file__).resolve().parents[2] / "docs" / "planner.md").read_text(
    encoding="utf-8"
)
MARKDOWN = re.findall(r"```markdown\n(.*?)```", DOC, re.DOTALL)
TOML = re.findall(r"```toml\n(.*?)```", DOC, re.DOTALL)
FACTS = next(block for block in TOML if block.startswith("today ="))
CONFIG = next(block for block in TOML if block.startswith("[forge]"))


def test_format_example_parses_into_objectives() -> None:
    plan = parse_plan(MARKDOWN[0])
    assert [o.title for o in objectives(plan)] == [
        "Foundation — Core agent loop (dev → CI → review → merge)",
        "Releases",
    ]


def test_worked_example_before_facts_after() -> None:
    before, after = MARKDOWN[1], MARKDOWN[2]
    facts = parse_facts(FACTS)
    updated, changes = update_plan(
        parse_plan(before), facts.issues, facts.vault, facts.today
    )
    assert render_plan(updated) == after
    assert check_plan(updated, facts.issues, facts.vault) == ()
    status = updated.line(len(updated.lines))
    assert getattr(status, "word", None) is StatusWord.IN_PROGRESS
    assert len(changes) == 7  # date, 2 checks, annotation, marker, 2 statuses


def test_configuration_example_loads(tmp_path: Path) -> None:
    config = tmp_path / "dispatcher.toml"
    config.write_text(CONFIG, encoding="utf-8")
    settings = load_settings({"OPSVAULT_FORGE_TOKEN": "t" * 32}, config)
    assert settings.planner.issues_repo == ("acme/app",)
    assert settings.planner.interval == timedelta(hours=1)
