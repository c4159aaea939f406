"""A secret printed by an action never reaches git, comments or logs; undeclared ones never reach it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pygit2
import pytest

from opsvault.dispatcher.runner import SubprocessRunner
from opsvault.dispatcher.secrets import EnvSecrets
from tests.dispatcher.harness import REPO, make_harness

SECRET = "s3cr3t-value-4711"
OTHER = "other-secret-0815"

LEAKY = """name = "leaky"
description = "prints its secret and its environment (a test of redaction)"
blast_radius = "low"
[secrets]
required = ["HOOK_TOKEN"]
[[steps]]
name = "leak"
run = ["{python}", "-c", "import os; print('token=' + os.environ['HOOK_TOKEN']); print('env=' + ','.join(sorted(os.environ)))"]
"""


def leaky_policy(text: str) -> str:
    return text.replace(
        '[formulas]\nnoop = "low"', '[formulas]\nnoop = "low"\nleaky = "low"'
    ).replace(
        'http-hook = ["HOOK_TOKEN"]',
        'http-hook = ["HOOK_TOKEN"]\nleaky = ["HOOK_TOKEN"]',
    )


def test_secret_never_reaches_git_comments_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vault = make_harness(tmp_path, leaky_policy)
    try:
        vault.forge.push(
            REPO, "main", {"vault/formulas/leaky.toml": LEAKY}, author="alice"
        )
        vault.runner = SubprocessRunner(
            EnvSecrets(
                {"OPSVAULT_SECRET_HOOK_TOKEN": SECRET, "OPSVAULT_SECRET_OTHER": OTHER}
            ),
            workspace_root=tmp_path / "work",
        )
        (tmp_path / "work").mkdir()
        number = vault.propose(
            "leak-1", 'formula = "leaky"\ncontext = "test"\nsecrets = ["HOOK_TOKEN"]\n'
        )
        report = vault.tick()
        assert report.ok, report.errors
        record_path = next(
            p
            for p in vault.main_files("vault/fired")
            if p.endswith("leak-1.result.json")
        )
        record = json.loads(vault.main_file(record_path) or b"{}")
        assert record["outcome"] == "succeeded", record
        assert "token=[REDACTED:HOOK_TOKEN]" in record["output_tail"]
        env_line = next(
            line
            for line in record["output_tail"].splitlines()
            if line.startswith("env=")
        )
        assert (
            "HOOK_TOKEN" in env_line
            and "OTHER" not in env_line
            and "OPSVAULT" not in env_line
        )
        # every object in the forge's repository and the dispatcher's clone
        for git_dir in (vault.forge.repo(REPO).git.path, tmp_path / "d1.git"):
            repo = pygit2.Repository(str(git_dir))
            for oid in repo.odb:
                assert SECRET.encode() not in repo.odb.read(oid)[1]
        comments = vault.client("alice").fetch_comments(number)
        assert comments and all(SECRET not in c.body for c in comments)
        assert SECRET not in caplog.text
        assert SECRET not in "\n".join(
            f"{d.subject} {d.event} {d.detail}" for d in report.decisions
        )
    finally:
        vault.close()
