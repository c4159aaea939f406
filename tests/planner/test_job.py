"""The planner as a dispatcher job, and `vault plan --config`: wiring, locking, output."""

from __future__ import annotations

import json
import threading
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import opsvault.cli.dispatch as dispatch_cli
from opsvault.app import App, build_app
from opsvault.cli import cli
from opsvault.config import load_settings
from opsvault.dispatcher.report import TickReport
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.planner.job import PlannerJob
from tests.conftest import init_repo
from tests.dispatcher.harness import REPO, T0, template_files

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TREE = (
    "# Prerequisite Tree\n"
    "<!-- Last updated: 2026-11-01 -->\n"
    "\n"
    "## Objective: Publish\n"
    "- [ ] deploy key (#1) blocked-on-vault (vault/actions/deploy-key.toml)\n"
    "Status: BLOCKED\n"
)


def local_ops(tmp_path: Path) -> tuple[Path, Path]:
    ops = tmp_path / "ops"
    files = template_files()
    files["prerequisites.md"] = TREE
    files["vault/fired/2026/11/deploy-key.toml"] = ""
    init_repo(ops, files)
    config = tmp_path / "dispatcher.toml"
    config.write_text(f'[forge]\npath = "{ops}"\noperator = "alice"\n')
    return ops, config


def main_text(ops: Path) -> str:
    repo = Pygit2OpsRepo.open(ops)
    data = repo.read_file(repo.resolve("main"), "prerequisites.md")
    return (data or b"").decode("utf-8")


def test_the_local_mode_job_commits_and_logs_a_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ops, config = local_ops(tmp_path)
    app = build_app(load_settings({}, config), {})
    job = PlannerJob(app, clock=lambda: NOW)
    with caplog.at_level("INFO", logger="opsvault.planner.job"):
        job()
    report = job.last_report
    assert report is not None and report.commit is not None
    assert "Status: IN PROGRESS\n" in main_text(ops)
    assert "<!-- Last updated: 2026-11-21 -->" in main_text(ops)
    assert f"committed to main as {report.commit[:12]}" in caplog.text
    job()
    assert job.last_report is not None and not job.last_report.changed


def test_a_dry_run_job_writes_nothing(tmp_path: Path) -> None:
    ops, config = local_ops(tmp_path)
    app = build_app(load_settings({}, config), {})
    job = PlannerJob(app, write=False, clock=lambda: NOW)
    job()
    assert job.last_report is not None and job.last_report.changed
    assert main_text(ops) == TREE


def test_a_serialized_tick_waits_for_a_running_planner() -> None:
    job = PlannerJob(types.SimpleNamespace(), clock=lambda: NOW)  # type: ignore[arg-type]
    ran: list[datetime] = []

    def tick(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
        ran.append(now)
        return None  # type: ignore[return-value]

    locked = job.serialize(tick)
    with job.lock:  # the planner is running
        worker = threading.Thread(target=locked, args=(None, NOW))
        worker.start()
        worker.join(0.2)
        assert worker.is_alive() and ran == []
    worker.join(5)
    assert ran == [NOW]


def test_dispatcher_run_schedules_the_planner_beside_the_tick(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ops, config = local_ops(tmp_path)
    seen: dict[str, Any] = {}

    def fake_run_service(app: App, interval: timedelta, **options: Any) -> Any:
        seen.update(options)
        options["planner_job"]()  # what the scheduler does every planner.interval
        return types.SimpleNamespace(abandoned=False, last_report=None)

    monkeypatch.setattr(dispatch_cli, "run_service", fake_run_service)
    result = CliRunner().invoke(cli, ["dispatcher", "run", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert isinstance(seen["planner_job"], PlannerJob)
    assert seen["tick"].__qualname__.endswith("serialize.<locals>.locked")
    assert "Status: IN PROGRESS\n" in main_text(ops)


def test_plan_with_a_local_config_commits_to_main(tmp_path: Path) -> None:
    ops, config = local_ops(tmp_path)
    result = CliRunner().invoke(
        cli, ["plan", "--config", str(config), "--today", "2026-11-21"]
    )
    assert result.exit_code == 0, result.output
    assert "note: issue states not checked: no forge configured" in result.output
    assert "+Status: IN PROGRESS\n" in result.output
    assert "committed " in result.output
    assert "Status: IN PROGRESS\n" in main_text(ops)


def test_plan_with_a_forgejo_config_proposes_a_pr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.dispatcher.harness import make_harness

    h = make_harness(tmp_path)
    try:
        issue = h.forge.add_issue(REPO, "deploy key", author="alice", state="closed")
        h.forge.push(
            REPO,
            "main",
            {
                "prerequisites.md": TREE.replace("#1", f"#{issue}"),
                "vault/fired/2026/11/deploy-key.toml": "",
            },
            author="alice",
        )
        h.now[0] = T0
        config = tmp_path / "forgejo.toml"
        config.write_text(
            "[forge]\n"
            'kind = "forgejo"\n'
            f'url = "{h.forge.url}"\n'
            f'repo = "{REPO}"\n'
            f'git_url = "{h.forge.repo(REPO).git.path}"\n'
            "[dispatcher]\n"
            'identity = "vault-bot"\n'
            f'state_dir = "{tmp_path / "state"}"\n'
        )
        monkeypatch.setenv("OPSVAULT_FORGE_TOKEN", h.tokens["vault-bot"])
        runner = CliRunner()
        args = ["plan", "--config", str(config), "--today", "2026-11-21"]
        dry = runner.invoke(cli, [*args, "--dry-run", "--json"])
        assert dry.exit_code == 0, dry.output
        data = json.loads(dry.output)
        assert (data["issues_checked"], data["written"], data["proposal"]) == (
            True,
            False,
            None,
        )
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert f"+- [x] deploy key (#{issue})\n" in result.output
        assert "prerequisites.md:5: checked: " in result.output
        line = next(x for x in result.output.splitlines() if x.startswith("proposed"))
        assert "(plan/2026-11-21-" in line and "/acme/ops/pulls/" in line
        again = runner.invoke(cli, args)
        assert again.output.splitlines()[-1] == line
    finally:
        h.close()
