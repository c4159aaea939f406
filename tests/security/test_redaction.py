"""I6 — what the dispatcher records redacts every known secret value and the forge token.

End to end on the fake Forgejo with real steps: a formula that declares no
secret prints an undeclared secret (from the secrets directory) and the forge
token; the record committed on main, the PR comment, the tick report and the
notification hold only markers. Then each channel's building block: the
directory and environment sources list every secret, records are redacted
field by field, log lines (and tracebacks) through a filter.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pygit2

from opsvault.dispatcher.records import redact_record
from opsvault.dispatcher.runner import SubprocessRunner
from opsvault.dispatcher.secrets import (
    FORGE_TOKEN_MARKER,
    ChainSecrets,
    DirectorySecrets,
    EnvSecrets,
    RedactingFilter,
    Redactor,
    known_secrets,
)
from tests.dispatcher.harness import REPO, make_harness

UNDECLARED = "undeclared-db-password-9876"
FORGE = "forge-api-token-abcdef123456"

ECHO = """name = "echo"
description = "prints values it should never have known"
blast_radius = "low"
[[steps]]
name = "echo"
run = ["{python}", "-c", "import sys; print('got ' + sys.argv[1] + ' and ' + sys.argv[2]); sys.exit(3)", "{params.a}", "{params.b}"]
[params.a]
type = "string"
required = true
[params.b]
type = "string"
required = true
"""


def test_undeclared_secret_and_forge_token_are_redacted_on_main_and_in_comments(
    tmp_path: Path,
) -> None:
    vault = make_harness(
        tmp_path,
        lambda p: p.replace(
            '[formulas]\nnoop = "low"', '[formulas]\nnoop = "low"\necho = "low"'
        ),
    )
    try:
        secrets_dir = tmp_path / "secrets"
        secrets_dir.mkdir()
        (secrets_dir / "DB_PASSWORD").write_text(UNDECLARED + "\n")
        source = ChainSecrets(DirectorySecrets(secrets_dir), EnvSecrets({}))
        redact = Redactor(lambda: known_secrets(source) | {FORGE_TOKEN_MARKER: FORGE})
        (tmp_path / "work").mkdir()
        vault.runner = SubprocessRunner(
            source, workspace_root=tmp_path / "work", redactions=redact.values
        )
        vault.forge.push(
            REPO, "main", {"vault/formulas/echo.toml": ECHO}, author="alice"
        )
        # The proposer learnt the values elsewhere and passes them as params: the
        # action file itself is the proposer's own text, but nothing the
        # dispatcher writes may repeat them.
        number = vault.propose(
            "echo-1",
            'formula = "echo"\ncontext = "c"\nparams = { a = "x", b = "y" }\n',
        )
        app = vault.app()
        app.redact = redact
        report = vault.tick(app)
        assert report.ok, report.errors
        # A second action, whose output is the secrets themselves.
        vault.forge.push(
            REPO,
            "main",
            {
                "vault/formulas/echo.toml": ECHO.replace(
                    "sys.argv[1] + ' and ' + sys.argv[2]",
                    f"'{UNDECLARED[:10]}' + '{UNDECLARED[10:]}' + ' and ' + '{FORGE[:8]}' + '{FORGE[8:]}'",
                )
            },
            author="alice",
        )
        number = vault.propose(
            "echo-2", 'formula = "echo"\ncontext = "c"\nparams = { a = "x", b = "y" }\n'
        )
        report = vault.tick(app)
        assert report.ok, report.errors
        path = next(
            p
            for p in vault.main_files("vault/fired")
            if p.endswith("echo-2.result.json")
        )
        record = json.loads(vault.main_file(path) or b"{}")
        assert record["outcome"] == "failed"
        assert (
            "got [REDACTED:DB_PASSWORD] and [REDACTED:forge-token]"
            in record["output_tail"]
        )
        for git_dir in (vault.forge.repo(REPO).git.path, tmp_path / "d1.git"):
            repo = pygit2.Repository(str(git_dir))
            for oid in repo.odb:
                data = repo.odb.read(oid)[1]
                assert UNDECLARED.encode() not in data and FORGE.encode() not in data
        comments = vault.client("alice").fetch_comments(number)
        assert any("[REDACTED:DB_PASSWORD]" in c.body for c in comments)
        assert all(UNDECLARED not in c.body and FORGE not in c.body for c in comments)
        shown = "\n".join(f"{d.subject} {d.event} {d.detail}" for d in report.decisions)
        assert UNDECLARED not in shown and FORGE not in shown
        for sent in vault.notifier.sent:
            assert UNDECLARED not in repr(sent) and FORGE not in repr(sent)
    finally:
        vault.close()


def test_sources_list_every_secret_they_hold(tmp_path: Path) -> None:
    (tmp_path / "A_KEY").write_text("from-the-dir\n")
    (tmp_path / "lower-case").write_text("not a secret name")
    chain = ChainSecrets(
        DirectorySecrets(tmp_path),
        EnvSecrets(
            {
                "OPSVAULT_SECRET_A_KEY": "shadowed",
                "OPSVAULT_SECRET_B": "env-b",
                "PATH": "/x",
            }
        ),
    )
    assert known_secrets(chain) == {"A_KEY": "from-the-dir", "B": "env-b"}
    assert known_secrets(EnvSecrets({"PATH": "/x"})) == {}


def test_redactor_replaces_longest_first_and_skips_short_values() -> None:
    redact = Redactor(lambda: {"LONG": "abcdefgh", "PART": "abcd", "TINY": "ab"})
    assert (
        redact("x abcdefgh y abcd z ab") == "x [REDACTED:LONG] y [REDACTED:PART] z ab"
    )
    assert redact.values() == {"LONG": "abcdefgh", "PART": "abcd"}


def test_redactor_refresh_picks_up_rotated_values_and_survives_failures() -> None:
    values = {"K": "first-value"}
    calls = []

    def load() -> dict[str, str]:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("secrets dir gone")
        return dict(values)

    redact = Redactor(load)
    values["K"] = "second-value"
    redact.refresh()
    assert redact("second-value") == "[REDACTED:K]"
    redact.refresh()  # fails: the previous values stay
    assert redact("second-value") == "[REDACTED:K]"


def test_records_are_redacted_in_every_string_and_keep_their_format() -> None:
    redact = Redactor(lambda: {"K": 'va"lue\\x'})
    record = {"detail": 'saw va"lue\\x', "reasons": ['va"lue\\x'], "exit_code": 1}
    raw = (
        json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    ).encode()
    cleaned = json.loads(redact_record(raw, redact))
    assert cleaned == {
        "detail": "saw [REDACTED:K]",
        "reasons": ["[REDACTED:K]"],
        "exit_code": 1,
    }
    untouched = b'{\n  "a": "b"\n}\n'
    assert redact_record(untouched, redact) is untouched


def test_log_lines_and_tracebacks_are_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(Redactor(lambda: {"K": "log-secret-42"})))
    logger = logging.getLogger("opsvault.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("posting with %s", "log-secret-42")
        try:
            raise RuntimeError("failed with log-secret-42")
        except RuntimeError:
            logger.exception("hook failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "log-secret-42" not in text
    # The message, the exception (and its source line).
    assert text.count("[REDACTED:K]") >= 2


def test_build_app_redacts_every_secret_source_and_the_forge_token(
    tmp_path: Path,
) -> None:
    from opsvault.app import build_app
    from opsvault.config import load_settings
    from opsvault.messages import ExecutionRequest, StepSpec
    from tests.conftest import init_repo

    origin = tmp_path / "origin"
    init_repo(origin, {"vault/policy.toml": "schema = 1\n"})
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "DB_PASSWORD").write_text(UNDECLARED)
    hook_secret = tmp_path / "webhook-secret"
    hook_secret.write_text("webhook-secret-0123456789abcdef\n")
    hook_secret.chmod(0o600)
    config = tmp_path / "d.toml"
    config.write_text(
        '[forge]\nkind = "forgejo"\nurl = "https://forge.example.org"\n'
        f'repo = "acme/ops"\ngit_url = "{origin}"\n'
        f'[dispatcher]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[secrets]\ndir = "{secrets_dir}"\n'
        f'[webhook]\nport = 0\nsecret_file = "{hook_secret}"\n'
    )
    environ = {
        "OPSVAULT_FORGE_TOKEN": FORGE,
        "OPSVAULT_SECRET_ENV_ONLY": "env-only-value",
    }
    app = build_app(load_settings(environ, config), environ)
    try:
        text = f"{UNDECLARED} {FORGE} env-only-value webhook-secret-0123456789abcdef"
        assert app.redact(text) == (
            "[REDACTED:DB_PASSWORD] [REDACTED:forge-token] [REDACTED:ENV_ONLY]"
            " [REDACTED:webhook-secret]"
        )
        step = ("/bin/echo", UNDECLARED, FORGE)
        result = app.runner.execute(
            ExecutionRequest("a-1", "f", (StepSpec("s", step),), (), (), (), 10.0)
        )
        assert "[REDACTED:DB_PASSWORD] [REDACTED:forge-token]" in result.output_tail
    finally:
        app.forge.close()


def test_notifications_are_redacted_before_delivery() -> None:
    import httpx

    from opsvault.dispatcher.notify import WebhookNotifier
    from opsvault.messages import Notification
    from opsvault.policy.model import Sink

    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return httpx.Response(204)

    notifier = WebhookNotifier(
        EnvSecrets({}),
        redact=Redactor(lambda: {"DB_PASSWORD": UNDECLARED}),
        transport=httpx.MockTransport(handler),
    )
    with notifier:
        failed = notifier.notify(
            [Sink("ops", "webhook", "https://hooks.example.invalid/x")],
            Notification("failed", f"title {UNDECLARED}", f"body {UNDECLARED}"),
        )
    assert failed == [] and seen
    assert UNDECLARED.encode() not in seen[0]
    assert b"[REDACTED:DB_PASSWORD]" in seen[0]
