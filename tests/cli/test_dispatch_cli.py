"""Wiring, output and exit codes of `vault dispatcher`; the tick itself is a stand-in."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import opsvault.cli.dispatch as dispatch_cli
from opsvault.app import App
from opsvault.cli import cli
from opsvault.dispatcher.report import Decision, TickReport
from opsvault.errors import ForgeUnavailable

TOKEN = "cli-test-token-0123456789abcdef"


def fake_tick_module(
    monkeypatch: pytest.MonkeyPatch,
    tick: Callable[..., TickReport],
) -> None:
    module = types.ModuleType("opsvault.dispatcher.tick")
    module.tick = tick  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "opsvault.dispatcher.tick", module)


def report(now: datetime, dry_run: bool, errors: tuple[str, ...] = ()) -> TickReport:
    stamp = now.isoformat()
    return TickReport(
        stamp,
        stamp,
        "a" * 40,
        "a" * 40,
        False,
        dry_run,
        (Decision("pr#7", "classified", "low"),),
        errors,
    )


def config_for(tmp_path: Path, ops: Path) -> Path:
    config = tmp_path / "dispatcher.toml"
    config.write_text(f'[forge]\npath = "{ops}"\noperator = "alice"\n')
    return config


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def test_once_prints_the_report_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ops: Path
) -> None:
    seen: list[tuple[App, bool]] = []

    def tick(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
        seen.append((app, dry_run))
        return report(now, dry_run)

    fake_tick_module(monkeypatch, tick)
    result = invoke(
        "dispatcher",
        "run",
        "--config",
        str(config_for(tmp_path, ops)),
        "--once",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert "1 proposal, 0 actions" in result.output
    assert "#7: classified — low" in result.output
    assert "  #7: classified — low" in result.output
    assert "[dry run: nothing written]" in result.output
    [(app, dry_run)] = seen
    assert dry_run
    assert app.identity == "vault-bot"
    assert app.settings.forge.path == ops


def test_once_json_and_exit_1_on_tick_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ops: Path
) -> None:
    fake_tick_module(
        monkeypatch,
        lambda app, now, *, dry_run=False: report(now, dry_run, ("pr#7: boom",)),
    )
    result = invoke(
        "dispatcher",
        "run",
        "--config",
        str(config_for(tmp_path, ops)),
        "--once",
        "--json",
    )
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["errors"] == ["pr#7: boom"]
    assert data["decisions"] == [
        {"subject": "pr#7", "event": "classified", "detail": "low"}
    ]


def test_once_forge_unavailable_exits_75(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ops: Path
) -> None:
    def tick(app: App, now: datetime, *, dry_run: bool = False) -> TickReport:
        raise ForgeUnavailable("GET /repos/acme/ops/pulls: HTTP 502")

    fake_tick_module(monkeypatch, tick)
    result = invoke(
        "dispatcher", "run", "--config", str(config_for(tmp_path, ops)), "--once"
    )
    assert result.exit_code == 75
    assert "Error: GET /repos/acme/ops/pulls: HTTP 502" in result.output


def test_service_mode_prints_one_json_line_per_tick(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ops: Path
) -> None:
    calls: dict[str, Any] = {}

    def fake_run_service(app: App, interval: Any, **options: Any) -> Any:
        calls.update(options, interval=interval)
        now = datetime(2026, 11, 21, 12, 0)
        for _ in range(2):
            options["on_report"](report(now, False))
        return types.SimpleNamespace(abandoned=False, last_report=None)

    monkeypatch.setattr(dispatch_cli, "run_service", fake_run_service)
    result = invoke(
        "dispatcher",
        "run",
        "--config",
        str(config_for(tmp_path, ops)),
        "--json",
        env={"OPSVAULT_DISPATCHER_INTERVAL": "5s"},
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert all(json.loads(line)["main_after"] == "a" * 40 for line in lines)
    assert calls["once"] is False
    assert calls["interval"].total_seconds() == 5


def test_a_bad_configuration_exits_78_listing_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "dispatcher.toml"
    config.write_text('[forge]\nkind = "forgejo"\n[dispatcher]\ninterval = "soon"\n')
    result = invoke(
        "dispatcher",
        "run",
        "--config",
        str(config),
        "--once",
        env={"OPSVAULT_DISPATCHER_MAX_CONCURRENCY": "many"},
    )
    assert result.exit_code == 78
    errors = [line for line in result.output.splitlines() if line]
    assert errors[0].startswith("Error: ")
    assert len(errors) == 5  # interval, url, repo, token, the variable
    assert any(
        line.startswith("OPSVAULT_DISPATCHER_MAX_CONCURRENCY: ") for line in errors
    )


def test_check_config_prints_settings_with_sources_and_a_masked_token(
    tmp_path: Path,
) -> None:
    config = tmp_path / "dispatcher.toml"
    config.write_text(
        '[forge]\nkind = "forgejo"\nurl = "https://forge.example.org"\nrepo = "acme/ops"\n'
    )
    env = {"OPSVAULT_FORGE_TOKEN": TOKEN, "OPSVAULT_DISPATCHER_GRACE": "45s"}
    # --offline: forge.example.org is not reachable from the tests.
    result = invoke(
        "dispatcher", "check-config", "--config", str(config), "--offline", env=env
    )
    assert result.exit_code == 0, result.output
    assert TOKEN not in result.output
    assert "# token: set (masked)" in result.output
    assert 'grace = "45s"' in result.output
    assert "# OPSVAULT_DISPATCHER_GRACE" in result.output
    assert f"# {config}" in result.output
    assert 'interval = "30s"' in result.output

    result = invoke(
        "dispatcher",
        "check-config",
        "--config",
        str(config),
        "--offline",
        "--json",
        env=env,
    )
    data = json.loads(result.output)
    assert TOKEN not in result.output
    assert data["settings"]["forge"]["token"] == "***"
    assert data["sources"]["dispatcher.grace"] == "OPSVAULT_DISPATCHER_GRACE"


def test_check_config_accepts_the_shipped_local_example(ops: Path) -> None:
    from opsvault._resources import data_dir

    example = data_dir("examples") / "dispatcher.toml"
    result = invoke(
        "dispatcher",
        "check-config",
        "--config",
        str(example),
        env={"OPSVAULT_FORGE_PATH": str(ops)},
    )
    assert result.exit_code == 0, result.output
    assert 'kind = "local"' in result.output
    assert "# token: not used in local mode" in result.output


def test_dispatcher_is_listed_in_help() -> None:
    result = invoke("--help")
    assert "dispatcher" in result.output
    result = invoke("dispatcher", "--help")
    assert "check-config" in result.output and "run" in result.output
