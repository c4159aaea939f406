from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from pathlib import Path

import pygit2
import pytest

from opsvault._resources import data_dir
from opsvault.app import build_app
from opsvault.cli.init import create_ops_repo
from opsvault.config import (
    DEFAULT_STATE_DIR,
    ForgeKind,
    InvalidConfigError,
    Settings,
    load_settings,
    settings_data,
)
from opsvault.config_sources import env_name, load_token_file, setting_keys
from opsvault.errors import ConfigError
from opsvault.forge.token import ForgeToken
from tests.conftest import init_repo

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "s3cr3t-token-value-0123456789abcdef"


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    path = tmp_path / "ops"
    create_ops_repo(path, when=0)
    return path


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def problems_of(exc: pytest.ExceptionInfo[InvalidConfigError]) -> set[tuple[str, str]]:
    return {(p.where, p.path) for p in exc.value.problems}


def forgejo_config(tmp_path: Path, extra: str = "") -> Path:
    return write(
        tmp_path / "dispatcher.toml",
        '[forge]\nkind = "forgejo"\nurl = "https://forge.example.org"\nrepo = "acme/ops"\n'
        + extra,
    )


# -- precedence -----------------------------------------------------------------------


def test_defaults_with_only_the_ops_path(ops: Path) -> None:
    settings = load_settings({"OPSVAULT_FORGE_PATH": str(ops)}, None)
    assert settings.forge.kind is ForgeKind.LOCAL
    assert settings.forge.path == ops
    assert settings.forge.token is None
    assert settings.dispatcher.interval == timedelta(seconds=30)
    assert settings.dispatcher.max_concurrency == 4
    assert settings.dispatcher.queue_limit == 100
    assert settings.dispatcher.grace == timedelta(seconds=30)
    assert settings.planner.interval == timedelta(hours=1)
    assert settings.planner.issues_repo == ()
    # Local mode keeps state inside the repository's git directory.
    assert settings.dispatcher.state_dir == ops / ".git" / "opsvault"
    assert settings.source_of("forge.path") == "OPSVAULT_FORGE_PATH"
    assert settings.source_of("dispatcher.interval") == "default"


def test_override_beats_environment_beats_file_beats_default(
    tmp_path: Path, ops: Path
) -> None:
    config = write(
        tmp_path / "d.toml",
        f'[forge]\npath = "{ops}"\n[dispatcher]\ninterval = "10s"\nqueue_limit = 7\nmax_concurrency = 2\n',
    )
    environ = {
        "OPSVAULT_DISPATCHER_INTERVAL": "20s",
        "OPSVAULT_DISPATCHER_QUEUE_LIMIT": "9",
    }
    settings = load_settings(environ, config, {"dispatcher.interval": "5m"})
    assert settings.dispatcher.interval == timedelta(minutes=5)
    assert settings.dispatcher.queue_limit == 9
    assert settings.dispatcher.max_concurrency == 2
    assert settings.dispatcher.grace == timedelta(seconds=30)
    assert settings.source_of("dispatcher.interval") == "override dispatcher.interval"
    assert (
        settings.source_of("dispatcher.queue_limit")
        == "OPSVAULT_DISPATCHER_QUEUE_LIMIT"
    )
    assert settings.source_of("dispatcher.max_concurrency") == str(config)


def test_an_empty_value_means_not_set(tmp_path: Path, ops: Path) -> None:
    config = write(
        tmp_path / "d.toml",
        f'[forge]\npath = "{ops}"\ngit_url = ""\n[dispatcher]\nidentity = "bot"\n',
    )
    settings = load_settings(
        {"OPSVAULT_DISPATCHER_IDENTITY": "", "OPSVAULT_FORGE_URL": ""},
        config,
        {"dispatcher.identity": None},
    )
    assert settings.dispatcher.identity == "bot"
    assert settings.forge.git_url == ""


def test_relative_paths_in_the_file_are_relative_to_the_file(tmp_path: Path) -> None:
    init_repo(tmp_path / "etc" / "ops", {"vault/policy.toml": "schema = 1\n"})
    (tmp_path / "etc" / "secrets").mkdir()
    config = write(
        tmp_path / "etc" / "d.toml",
        '[forge]\npath = "ops"\n[dispatcher]\nstate_dir = "state"\n[secrets]\ndir = "secrets"\n',
    )
    settings = load_settings({}, config)
    assert settings.forge.path == tmp_path / "etc" / "ops"
    assert settings.dispatcher.state_dir == tmp_path / "etc" / "state"
    assert settings.secrets.dir == tmp_path / "etc" / "secrets"


def test_issues_repo_is_one_repo_or_a_list(tmp_path: Path, ops: Path) -> None:
    base = {"OPSVAULT_FORGE_PATH": str(ops)}
    config = write(tmp_path / "d.toml", '[planner]\nissues_repo = "acme/app"\n')
    assert load_settings(base, config).planner.issues_repo == ("acme/app",)
    write(config, '[planner]\nissues_repo = ["acme/app", "acme/web"]\n')
    assert load_settings(base, config).planner.issues_repo == ("acme/app", "acme/web")
    environ = {**base, "OPSVAULT_PLANNER_ISSUES_REPO": "acme/a, acme/b"}
    assert load_settings(environ, config).planner.issues_repo == ("acme/a", "acme/b")


# -- typing and unknown keys ----------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "OPSVAULT_DISPATCHER_MAX_CONCURRENCY",
            "four",
            "expected an integer, got 'four'",
        ),
        ("OPSVAULT_DISPATCHER_MAX_CONCURRENCY", "0", "0 is less than the minimum of 1"),
        ("OPSVAULT_DISPATCHER_QUEUE_LIMIT", "2.5", "expected an integer, got '2.5'"),
        ("OPSVAULT_DISPATCHER_INTERVAL", "1h30m", "'1h30m' does not match"),
        ("OPSVAULT_PLANNER_INTERVAL", "0s", "'0s' does not match"),
        ("OPSVAULT_FORGE_KIND", "gitea", "'gitea' is not one of ['local', 'forgejo']"),
        (
            "OPSVAULT_PLANNER_ISSUES_REPO",
            "acme",
            "expected 'owner/name' or a list of them",
        ),
    ],
)
def test_environment_values_are_typed_and_errors_name_the_variable(
    ops: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(InvalidConfigError) as exc:
        load_settings({"OPSVAULT_FORGE_PATH": str(ops), variable: value}, None)
    [problem] = exc.value.problems
    assert problem.where == variable
    assert message in problem.message
    assert str(exc.value).startswith(f"{variable}: ")


def test_unknown_keys_are_rejected(tmp_path: Path, ops: Path) -> None:
    config = write(
        tmp_path / "d.toml",
        f'[forge]\npath = "{ops}"\nurll = "x"\n[dispatcher]\ninterval = "1m"\n[extra]\na = 1\n',
    )
    with pytest.raises(InvalidConfigError) as exc:
        load_settings({}, config)
    assert problems_of(exc) == {(str(config), "$.forge.urll"), (str(config), "$.extra")}


def test_unknown_setting_variables_are_rejected(ops: Path) -> None:
    environ = {
        "OPSVAULT_FORGE_PATH": str(ops),
        "OPSVAULT_DISPATCHER_INTERVALL": "1m",
        "OPSVAULT_SECRET_DEPLOY_KEY": "not a setting",  # a secret, not a setting
        "OPSVAULT_SECRETS_EXTRA": "may be a secret named S_EXTRA",
    }
    with pytest.raises(InvalidConfigError) as exc:
        load_settings(environ, None)
    assert problems_of(exc) == {("OPSVAULT_DISPATCHER_INTERVALL", "")}


def test_a_token_in_the_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    config = forgejo_config(tmp_path, f'token = "{TOKEN}"\n')
    with pytest.raises(InvalidConfigError) as exc:
        load_settings({"OPSVAULT_FORGE_TOKEN": "t"}, config)
    [problem] = exc.value.problems
    assert problem.path == "$.forge.token"
    assert "OPSVAULT_FORGE_TOKEN" in problem.message
    assert TOKEN not in str(exc.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    config = write(
        tmp_path / "d.toml",
        '[forge]\nkind = "forgejo"\nurl = "ftp://x"\n'
        '[dispatcher]\nmax_concurrency = "4"\ngrace = "soon"\nbogus = true\n',
    )
    with pytest.raises(InvalidConfigError) as exc:
        load_settings({"OPSVAULT_DISPATCHER_QUEUE_LIMIT": "lots"}, config)
    assert exc.value.exit_code == 78
    assert isinstance(exc.value, ConfigError)
    where = str(config)
    assert problems_of(exc) == {
        (where, "$.forge.url"),
        (where, "$.dispatcher.max_concurrency"),
        (where, "$.dispatcher.grace"),
        (where, "$.dispatcher.bogus"),
        ("OPSVAULT_DISPATCHER_QUEUE_LIMIT", ""),
        (where, "$.forge.repo"),  # required in forgejo mode
        (where, "$.forge.token_file"),  # no token anywhere
    }
    lines = str(exc.value).splitlines()
    assert len(lines) == 7
    assert (
        f"{where}: $.dispatcher.max_concurrency: expected integer, got string '4'"
        in lines
    )


def test_a_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    config = write(tmp_path / "d.toml", "[forge\n")
    with pytest.raises(InvalidConfigError) as exc:
        load_settings({}, config)
    [problem] = exc.value.problems
    assert problem.where == str(config)
    assert "line 1" in problem.message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError) as exc:
        load_settings({}, tmp_path / "nope.toml")
    assert "cannot read the configuration file" in str(exc.value)


# -- mode requirements ----------------------------------------------------------------


def test_local_mode_requires_an_ops_repo_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError) as exc:
        load_settings({}, None)
    [problem] = exc.value.problems
    assert (problem.where, problem.path) == ("configuration", "$.forge.path")
    assert "OPSVAULT_FORGE_PATH" in problem.message

    with pytest.raises(InvalidConfigError) as exc:
        load_settings({"OPSVAULT_FORGE_PATH": str(tmp_path)}, None)
    [problem] = exc.value.problems
    assert problem.where == "OPSVAULT_FORGE_PATH"
    assert "no vault/policy.toml" in problem.message
    assert "vault init" in problem.message


def test_forgejo_mode_requires_url_repo_and_token(tmp_path: Path) -> None:
    config = write(tmp_path / "d.toml", '[forge]\nkind = "forgejo"\n')
    with pytest.raises(InvalidConfigError) as exc:
        load_settings({}, config)
    assert problems_of(exc) == {
        (str(config), "$.forge.url"),
        (str(config), "$.forge.repo"),
        (str(config), "$.forge.token_file"),
    }


def test_forgejo_mode_ignores_a_missing_ops_path(tmp_path: Path) -> None:
    settings = load_settings({"OPSVAULT_FORGE_TOKEN": TOKEN}, forgejo_config(tmp_path))
    assert settings.forge.kind is ForgeKind.FORGEJO
    assert settings.forge.clone_url == "https://forge.example.org/acme/ops.git"
    assert settings.dispatcher.state_dir == DEFAULT_STATE_DIR
    assert settings.forge.token == ForgeToken(TOKEN)


def test_secrets_dir_must_exist(tmp_path: Path, ops: Path) -> None:
    environ = {
        "OPSVAULT_FORGE_PATH": str(ops),
        "OPSVAULT_SECRETS_DIR": str(tmp_path / "x"),
    }
    with pytest.raises(InvalidConfigError) as exc:
        load_settings(environ, None)
    assert problems_of(exc) == {("OPSVAULT_SECRETS_DIR", "")}


# -- the token ------------------------------------------------------------------------


def test_token_file_content_is_stripped(tmp_path: Path) -> None:
    token_file = write(tmp_path / "token", f"  {TOKEN}\n")
    config = forgejo_config(tmp_path, f'token_file = "{token_file}"\n')
    settings = load_settings({}, config)
    assert settings.forge.token is not None
    assert settings.forge.token.reveal() == TOKEN


def test_environment_token_beats_token_file(tmp_path: Path) -> None:
    # The file is unreadable by policy (mode 0644) but never consulted.
    token_file = write(tmp_path / "token", "from-file", mode=0o644)
    config = forgejo_config(tmp_path, f'token_file = "{token_file}"\n')
    settings = load_settings({"OPSVAULT_FORGE_TOKEN": TOKEN}, config)
    assert settings.forge.token == ForgeToken(TOKEN)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_group_or_world_accessible_token_file_is_refused(
    tmp_path: Path, mode: int
) -> None:
    token_file = write(tmp_path / "token", TOKEN, mode=mode)
    config = forgejo_config(tmp_path, f'token_file = "{token_file}"\n')
    with pytest.raises(InvalidConfigError) as exc:
        load_settings({}, config)
    [problem] = exc.value.problems
    assert problem.where == str(token_file)
    assert f"mode {mode:04o}" in problem.message
    assert f"run `chmod 600 {token_file}`" in problem.message
    assert TOKEN not in str(exc.value)


def test_load_token_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_token_file(tmp_path / "missing")
    assert exc.value.where == str(tmp_path / "missing")
    assert exc.value.exit_code == 78


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    token_file = write(tmp_path / "token", "\n")
    config = forgejo_config(tmp_path, f'token_file = "{token_file}"\n')
    with pytest.raises(InvalidConfigError) as exc:
        load_settings({}, config)
    assert problems_of(exc) == {(str(token_file), "")}


def test_token_is_masked_in_repr_str_data_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = load_settings({"OPSVAULT_FORGE_TOKEN": TOKEN}, forgejo_config(tmp_path))
    logging.getLogger("test").info("settings: %s %r", settings, settings)
    assert "ForgeToken('***')" in repr(settings)
    for text in (
        repr(settings),
        str(settings),
        caplog.text,
        json.dumps(settings_data(settings)),
    ):
        assert TOKEN not in text
    assert "effective settings" in caplog.text
    assert settings_data(settings)["forge"]["token"] == "***"


# -- docs and examples ----------------------------------------------------------------


def test_every_setting_and_its_variable_is_documented() -> None:
    text = (ROOT / "docs" / "operating.md").read_text()
    for section, key in setting_keys():
        assert f"`{key}`" in text, f"docs/operating.md lacks [{section}] {key}"
        assert f"`{env_name(section, key)}`" in text
    assert "`OPSVAULT_FORGE_TOKEN`" in text


def test_the_local_example_works_with_vault_init_output(
    tmp_path: Path, ops: Path
) -> None:
    example = data_dir("examples") / "dispatcher.toml"
    settings = load_settings({"OPSVAULT_FORGE_PATH": str(ops)}, example)
    assert settings.forge.kind is ForgeKind.LOCAL
    assert settings.forge.operator == "alice"  # an admin in the template's policy


def test_the_forgejo_example_is_valid(tmp_path: Path) -> None:
    example = data_dir("examples") / "dispatcher-forgejo.toml"
    settings = load_settings({"OPSVAULT_FORGE_TOKEN": TOKEN}, example)
    assert settings.forge.kind is ForgeKind.FORGEJO
    assert settings.planner.issues_repo


# -- build_app ------------------------------------------------------------------------


def test_build_app_local_mode(ops: Path, tmp_path: Path) -> None:
    from opsvault.dispatcher.notify import WebhookNotifier
    from opsvault.dispatcher.runner import SubprocessRunner
    from opsvault.forge.local import LocalForge
    from opsvault.git.mainline import LocalMainline

    (tmp_path / "secrets").mkdir()
    environ = {
        "OPSVAULT_FORGE_PATH": str(ops),
        "OPSVAULT_FORGE_OPERATOR": "alice",
        "OPSVAULT_SECRETS_DIR": str(tmp_path / "secrets"),
    }
    settings = load_settings(environ, None)
    app = build_app(settings, environ)
    assert isinstance(app.mainline, LocalMainline)
    assert isinstance(app.runner, SubprocessRunner)
    assert isinstance(app.notifier, WebhookNotifier)
    assert app.identity == "vault-bot"
    assert app.state_dir.is_dir()
    assert app.repo.path == ops
    assert app.mainline.refresh() == str(pygit2.Repository(str(ops)).head.target)
    assert isinstance(app.forge, LocalForge)


def test_build_app_forgejo_mode_clones_once_without_credentials(tmp_path: Path) -> None:
    from opsvault.forge.client import ForgejoClient
    from opsvault.git.mainline import RemoteMainline

    origin = tmp_path / "origin"
    init_repo(origin, {"vault/policy.toml": "schema = 1\n"})
    state = tmp_path / "state"
    config = forgejo_config(
        tmp_path, f'git_url = "{origin}"\n[dispatcher]\nstate_dir = "{state}"\n'
    )
    environ = {"OPSVAULT_FORGE_TOKEN": TOKEN}
    settings = load_settings(environ, config)
    app = build_app(settings, environ)
    try:
        assert isinstance(app.forge, ForgejoClient)
        assert isinstance(app.mainline, RemoteMainline)
        assert app.mainline.refresh() == str(pygit2.Repository(str(origin)).head.target)
        assert (state / "repo.git").is_dir()
        assert (state.stat().st_mode & 0o077) == 0
        assert TOKEN not in (state / "repo.git" / "config").read_text()
        assert TOKEN not in repr(app.forge)
    finally:
        app.forge.close()
    again = build_app(settings, environ)  # opens the existing clone
    try:
        assert again.repo.path == app.repo.path
    finally:
        again.forge.close()


def test_build_app_reports_an_unusable_state_dir(tmp_path: Path, ops: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    environ = {
        "OPSVAULT_FORGE_PATH": str(ops),
        "OPSVAULT_DISPATCHER_STATE_DIR": str(blocker / "x"),
    }
    settings = load_settings(environ, None)
    with pytest.raises(ConfigError) as exc:
        build_app(settings, environ)
    assert exc.value.where == str(blocker / "x")


def test_default_settings_are_constructible() -> None:
    settings = Settings()
    assert re.search(r"token=None", repr(settings))


def test_git_auth_environment_carries_the_token_for_https_only(tmp_path: Path) -> None:
    import base64

    from opsvault.config import git_auth_environment

    environ = {"OPSVAULT_FORGE_TOKEN": TOKEN}
    settings = load_settings(environ, forgejo_config(tmp_path))
    env = git_auth_environment(settings)
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_KEY_0"] == "http.https://forge.example.org/.extraHeader"
    scheme, encoded = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: ").split()
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"vault-bot:{TOKEN}"
    for git_url in (
        "ssh://git@forge.example.org/acme/ops.git",
        "http://forge.example.org/acme/ops.git",
        str(tmp_path),
    ):
        other = load_settings(
            {**environ, "OPSVAULT_FORGE_GIT_URL": git_url}, forgejo_config(tmp_path)
        )
        assert git_auth_environment(other) == {}


def test_the_error_example_in_the_docs_is_what_opsvault_prints(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "operating.md").read_text()
    block = text.split("shaped `<file or variable>: <path>: <what>; <fix>`:\n\n```\n")[
        1
    ]
    documented = block.split("```")[0].splitlines()
    token_file = write(tmp_path / "token", TOKEN, mode=0o644)
    config = forgejo_config(
        tmp_path, f'token_file = "{token_file}"\n[dispatcher]\ninterval = "1h30m"\n'
    )
    with pytest.raises(InvalidConfigError) as exc:
        load_settings({"OPSVAULT_DISPATCHER_MAX_CONCURRENCY": "four"}, config)
    printed = str(exc.value).replace(str(tmp_path), "/etc/opsvault").splitlines()
    assert sorted(documented) == sorted(printed)


def test_the_systemd_unit_in_the_docs_outlasts_the_grace() -> None:
    text = (ROOT / "docs" / "operating.md").read_text()
    unit = text.split("```ini\n")[1].split("```")[0]
    options = dict(
        line.split("=", 1)
        for line in unit.splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert options["Type"] == "simple"
    assert options["KillSignal"] == "SIGTERM"
    assert options["ExecStart"].endswith(
        "vault dispatcher run --config /etc/opsvault/dispatcher.toml"
    )
    assert int(options["TimeoutStopSec"]) > Settings().dispatcher.grace.total_seconds()
    assert "78" in options["RestartPreventExitStatus"]
