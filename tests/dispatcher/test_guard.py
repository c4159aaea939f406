"""The guard self-check (issue 14 §2, ADR 0018): real drift is found, alerted, and halts.

On Forgejo the drift is built by loosening the protection rule through the fake's
API (``PATCH …/branch_protections/main``, as an admin would); in local mode by
removing or editing the guard hook of a repository made by ``vault init``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from opsvault.app import App
from opsvault.cli.init import create_ops_repo
from opsvault.config import ForgeKind, ForgeSettings
from opsvault.dispatcher.guard import (
    PRESCRIBED_PROTECTED,
    GuardCheck,
    GuardReport,
    judge_protection,
)
from opsvault.dispatcher.guard_job import GuardJob, run_guard_check
from opsvault.dispatcher.tick import tick
from opsvault.forge.types import BranchProtection
from opsvault.git.guard_hook import HOOK_SCRIPT, inspect_local_repo
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.layout import HALT
from opsvault.web.page import render_page
from opsvault.web.service import ServiceSurface
from opsvault.web.view import build_page
from tests.dispatcher.harness import (
    DOCS,
    NOOP,
    REPO,
    T0,
    Harness,
    make_harness,
)
from tests.dispatcher.local_harness import LocalHarness, make_local_harness

BOT = "vault-bot"


def documented_rule() -> BranchProtection:
    text = DOCS.read_text()
    found = re.search(
        r"<!-- opsvault:branch-protection -->\n```json\n(.*?)\n```", text, re.S
    )
    assert found is not None
    body = json.loads(found.group(1))
    return BranchProtection(
        enable_push=body["enable_push"],
        enable_push_whitelist=body["enable_push_whitelist"],
        push_whitelist_usernames=(BOT,),
        dismiss_stale_approvals=body["dismiss_stale_approvals"],
        protected_file_patterns=body["protected_file_patterns"],
    )


# -- the rule, judged (pure) --------------------------------------------------------


def test_the_documented_rule_is_what_the_check_prescribes() -> None:
    rule = documented_rule()
    assert tuple(rule.protected_file_patterns.split(";")) == PRESCRIBED_PROTECTED
    assert judge_protection(rule, "main", BOT) == []


@pytest.mark.parametrize(
    ("loosened", "check"),
    [
        ({"enable_push_whitelist": False}, GuardCheck.PUSH_WHITELIST),
        ({"enable_push": False}, GuardCheck.PUSH_WHITELIST),
        ({"push_whitelist_usernames": (BOT, "mallory")}, GuardCheck.PUSH_WHITELIST),
        ({"push_whitelist_usernames": ()}, GuardCheck.PUSH_WHITELIST),
        ({"push_whitelist_teams": ("devs",)}, GuardCheck.PUSH_WHITELIST),
        ({"push_whitelist_deploy_keys": True}, GuardCheck.PUSH_WHITELIST),
        ({"unprotected_file_patterns": "vault/**"}, GuardCheck.PUSH_WHITELIST),
        ({"dismiss_stale_approvals": False}, GuardCheck.STALE_APPROVALS),
        ({"protected_file_patterns": "vault/policy.toml"}, GuardCheck.PROTECTED_FILES),
        ({"approvals_whitelist_teams": ("bots",)}, GuardCheck.IDENTITY_NOT_APPROVER),
        ({"merge_whitelist_teams": ("bots",)}, GuardCheck.IDENTITY_NOT_APPROVER),
    ],
)
def test_each_loosening_is_a_finding_of_its_check(
    loosened: dict[str, object], check: GuardCheck
) -> None:
    rule = replace(documented_rule(), **loosened)  # type: ignore[arg-type]
    findings = judge_protection(rule, "main", BOT, in_team=lambda t: t == "bots")
    assert {f.check for f in findings} == {check}
    assert all(f.fix for f in findings)


def test_no_rule_and_too_few_approvals_are_findings() -> None:
    assert [f.check for f in judge_protection(None, "main", BOT)] == [
        GuardCheck.PROTECTION_RULE
    ]
    findings = judge_protection(documented_rule(), "main", BOT, required_approvals=1)
    assert [f.check for f in findings] == [GuardCheck.REQUIRED_APPROVALS]
    # the dispatcher's login is compared without regard to case, like every login
    assert judge_protection(documented_rule(), "main", "Vault-Bot") == []


# -- Forgejo: a loosened rule on the fake ------------------------------------------


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Harness]:
    harness = make_harness(tmp_path)
    yield harness
    harness.close()


def forgejo_app(vault: Harness, on_guard_drift: str = "halt") -> App:
    app = vault.app(on_guard_drift=on_guard_drift)
    app.settings = replace(
        app.settings,
        forge=ForgeSettings(kind=ForgeKind.FORGEJO, url=vault.forge.url, repo=REPO),
    )
    return app


def loosen(vault: Harness, body: dict[str, object]) -> None:
    answer = httpx.patch(
        f"{vault.forge.api_url}/repos/{REPO}/branch_protections/main",
        json=body,
        headers={"Authorization": f"token {vault.tokens['alice']}"},
    )
    assert answer.status_code == 200, answer.text


def test_the_documented_rule_on_forgejo_has_no_drift(vault: Harness) -> None:
    report = run_guard_check(forgejo_app(vault), T0)
    assert report.mode == "forgejo" and not report.drift


def test_a_loosened_whitelist_on_forgejo_is_found_alerted_and_halts(
    vault: Harness,
) -> None:
    app = forgejo_app(vault)
    job = GuardJob(app)
    number = vault.propose("noop-1", NOOP.format(msg="hi"))
    assert not job.wrap(tick)(app, vault.at(T0 - T0)).halted  # no drift yet
    loosen(vault, {"push_whitelist_usernames": [BOT, "mallory"]})
    loosen(vault, {"dismiss_stale_approvals": False})
    report = job.wrap(tick)(app, vault.at(job.interval))
    assert report.halted
    assert job.last is not None
    assert job.last.failing() == {GuardCheck.PUSH_WHITELIST, GuardCheck.STALE_APPROVALS}
    halt = vault.main_file(HALT)
    assert halt is not None and b"guard drift" in halt and b"'mallory'" in halt
    alerts = [n for _, n in vault.notifier.sent if n.event == "guard-drift"]
    assert len(alerts) == 1 and "mallory" in alerts[0].body
    # halted: the low-tier proposal is not merged
    assert not vault.pull(number).merged
    # the next tick checks again (drift was found) but alerts only what is new
    job.wrap(tick)(app, vault.at(job.interval * 2))
    assert len([n for _, n in vault.notifier.sent if n.event == "guard-drift"]) == 1


def test_alert_only_reports_drift_and_keeps_ticking(vault: Harness) -> None:
    app = forgejo_app(vault, on_guard_drift="alert")
    loosen(vault, {"enable_push": False})
    seen: list[GuardReport] = []
    job = GuardJob(app, on_result=seen.append)
    number = vault.propose("noop-1", NOOP.format(msg="hi"))
    report = job.wrap(tick)(app, vault.at(T0 - T0))
    assert not report.halted and vault.main_file(HALT) is None
    assert seen and seen[0].failing() == {GuardCheck.PUSH_WHITELIST}
    assert [n.event for _, n in vault.notifier.sent].count("guard-drift") == 1
    # the tick ran: it classified the proposal
    assert any(d.subject == f"pr#{number}" for d in report.decisions)


def test_drift_shows_on_the_page_and_in_metrics(vault: Harness) -> None:
    app = forgejo_app(vault, on_guard_drift="alert")
    loosen(vault, {"unprotected_file_patterns": "vault/actions/**"})
    surface = ServiceSurface(app)
    job = GuardJob(app, on_result=surface.guard_result)
    job.wrap(surface.wrap(tick))(app, vault.at(T0 - T0))
    metrics = surface.metrics.render().decode()
    assert 'opsvault_guard_drift{check="push-whitelist"} 1.0' in metrics
    assert 'opsvault_guard_drift{check="stale-approvals"} 0.0' in metrics
    html = render_page(build_page(surface.observed(), T0))
    assert 'class="banner warn notice">Guard drift: push-whitelist' in html
    assert "vault/actions/**" in html
    # fixed: the next tick checks again and the banner and gauge clear
    loosen(vault, {"unprotected_file_patterns": ""})
    job.wrap(surface.wrap(tick))(app, vault.at(job.interval))
    assert 'opsvault_guard_drift{check="push-whitelist"} 0.0' in (
        surface.metrics.render().decode()
    )
    assert build_page(surface.observed(), T0).notices == ()


def test_a_dispatcher_without_admin_rights_cannot_check_and_that_is_drift(
    vault: Harness,
) -> None:
    vault.forge.add_collaborator(REPO, BOT, "write")  # no longer repo admin
    report = run_guard_check(forgejo_app(vault), T0)
    assert report.failing() == {GuardCheck.UNCHECKED}
    assert "repo admin" in report.findings[0].fix


# -- local mode: the guard hook ------------------------------------------------------


def test_vault_init_installs_the_guard_and_it_refuses_pushes_to_main(
    tmp_path: Path,
) -> None:
    ops = tmp_path / "ops"
    create_ops_repo(ops, when=0)
    assert inspect_local_repo(ops) == []
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(ops), str(work)], check=True)
    git = ["git", "-C", str(work), "-c", "user.name=a", "-c", "user.email=a@x"]
    (work / "x.txt").write_text("x\n")
    subprocess.run([*git, "add", "x.txt"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    refused = subprocess.run(
        [*git, "push", "-q", "origin", "HEAD:refs/heads/side"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0 and "only proposal branches" in refused.stderr
    proposed = subprocess.run(
        [*git, "push", "-q", "origin", "HEAD:refs/heads/vault/x-1"]
    )
    assert proposed.returncode == 0


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalHarness]:
    harness = make_local_harness(tmp_path)
    from opsvault.git.guard_hook import install_local_guard

    install_local_guard(harness.repo.path)
    yield harness
    harness.close()


def test_a_removed_hook_in_local_mode_is_found_alerted_and_halts(
    local: LocalHarness,
) -> None:
    app = local.app()
    job = GuardJob(app)
    assert not job.wrap(tick)(app, T0).halted
    (local.repo.git_dir / "hooks" / "pre-receive").unlink()
    report = job.wrap(tick)(app, T0 + job.interval)
    assert report.halted
    assert job.last is not None and job.last.failing() == {GuardCheck.LOCAL_HOOK}
    assert local.repo.read_file(local.repo.resolve("main"), HALT) is not None
    assert [n.event for _, n in local.notifier.sent] == ["guard-drift"]


def test_an_edited_hook_or_a_hooks_path_elsewhere_is_drift(local: LocalHarness) -> None:
    hook = local.repo.git_dir / "hooks" / "pre-receive"
    hook.write_bytes(HOOK_SCRIPT.replace(b"status=1", b"status=0"))
    subprocess.run(
        ["git", "-C", str(local.repo.path), "config", "core.hooksPath", "/tmp"],
        check=True,
    )
    problems = {p.check for p in inspect_local_repo(local.repo.path)}
    assert problems == {"hook", "config"}


def test_the_doctor_example_in_operating_md_is_what_the_check_says() -> None:
    text = (DOCS.parent / "operating.md").read_text()
    block = text.split("$ vault doctor --config /etc/opsvault/dispatcher.toml\n")[1]
    documented = block.split("```")[0].splitlines()
    rule = replace(
        documented_rule(), push_whitelist_usernames=("opsvault-bot", "mallory")
    )
    [finding] = judge_protection(rule, "main", "opsvault-bot")
    assert documented == [
        f"DRIFT {finding.check}: {finding.problem}",
        f"  fix: {finding.fix}",
    ]


def test_the_service_checks_before_its_first_tick_and_halts(tmp_path: Path) -> None:
    """`vault dispatcher run` (the service, not --once) on a local repo without the hook."""
    from tests.cli.conftest import branch_with
    from tests.conftest import init_repo
    from tests.dispatcher.harness import template_files
    from tests.web.support import wait_for

    ops = tmp_path / "ops"
    init_repo(ops, template_files())  # no guard hook: not made by `vault init`
    branch_with(
        ops,
        "vault/noop-1",
        {"vault/actions/noop-1.toml": NOOP.format(msg="x").encode()},
    )
    config = tmp_path / "dispatcher.toml"
    config.write_text(
        f'[forge]\nkind = "local"\npath = "{ops}"\noperator = "alice"\n'
        f'[dispatcher]\nidentity = "vault-bot"\ninterval = "1s"\n'
        f'state_dir = "{tmp_path / "state"}"\n[runner]\nsandbox = "off"\n'
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from opsvault.cli import main; sys.exit(main())",
            "dispatcher",
            "run",
            "--config",
            str(config),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    repo = Pygit2OpsRepo.open(ops)
    try:
        wait_for(
            "vault/HALT on main",
            lambda: (
                repo.read_file(repo.resolve("main"), HALT) is not None
                or process.poll() is not None
            ),
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    halt = repo.read_file(repo.resolve("main"), HALT)
    assert halt is not None and b"local-hook" in halt
    # the low-tier proposal was never merged: the check ran before the first tick
    assert "vault/noop-1" in repo.branches("vault/noop-1")
    assert repo.read_file(repo.resolve("main"), "vault/actions/noop-1.toml") is None
