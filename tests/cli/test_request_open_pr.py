from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import opsvault.cli.request as vault_cli
from opsvault.cli import cli
from opsvault.cli.init import create_ops_repo, template_files
from opsvault.forge.client import ForgejoClient
from opsvault.forge.types import ListState, PullState
from testing.fake_forgejo.clients import client_for
from testing.fake_forgejo.server import FakeForgejo

HOOK_ARGS = (
    "http-hook",
    "--param",
    "url=https://deploy.example/hook",
    "--secret",
    "HOOK_TOKEN",
    "--context",
    "publish the release notes",
)


@dataclass
class World:
    forge: FakeForgejo
    token: str
    client: ForgejoClient
    ops: Path


@pytest.fixture
def world(
    fake_forgejo: FakeForgejo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    forge = fake_forgejo
    token = forge.add_user("dev-bot", is_bot=True)
    forge.add_org("acme")
    forge.create_repo("acme", "ops", template_files())
    forge.add_collaborator("acme/ops", "dev-bot", "write")
    ops = tmp_path / "ops"
    create_ops_repo(ops)
    client = client_for(forge, token)
    # The command closes the forge it opened, so each run gets its own client.
    monkeypatch.setattr(
        vault_cli,
        "_open_forge",
        lambda config_path, ops, requested_by: (client_for(forge, token), "main", None),
    )
    yield World(forge, token, client, ops)
    client.close()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def open_pulls(client: ForgejoClient) -> list[tuple[int, str]]:
    return [(p.number, p.head_ref) for p in client.fetch_pull_requests(ListState.ALL)]


def test_open_pr_proposes_the_file_on_a_branch(world: World) -> None:
    code, out = run(
        "request",
        *HOOK_ARGS,
        "--id",
        "hook-1",
        "--ops",
        str(world.ops),
        "--open-pr",
        "--json",
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["id"] == "hook-1"
    assert data["branch"] == "vault/hook-1"
    assert data["tier"] == "medium"
    assert data["url"].endswith(f"/pulls/{data['pr']}")
    pull = world.client.fetch_pull_request(data["pr"])
    assert (pull.state, pull.base_ref, pull.author) == (
        PullState.OPEN,
        "main",
        "dev-bot",
    )
    assert pull.title == "vault: hook-1 (medium)"
    assert "publish the release notes" in pull.body
    assert "**medium**" in pull.body
    assert "- medium: " in pull.body  # the formula's own tier, as a reason
    content = world.client.fetch_file("vault/actions/hook-1.toml", "vault/hook-1")
    assert b'formula = "http-hook"' in content
    assert b'url = "https://deploy.example/hook"' in content
    files = world.client.fetch_changed_files(pull.number, pull.head_sha)
    assert [f.filename for f in files] == ["vault/actions/hook-1.toml"]
    assert not (world.ops / "vault" / "actions" / "hook-1.toml").exists()


def test_rerunning_with_the_same_id_reuses_branch_and_pr(world: World) -> None:
    args = (
        "request",
        *HOOK_ARGS,
        "--id",
        "hook-1",
        "--ops",
        str(world.ops),
        "--open-pr",
        "--json",
    )
    code, first = run(*args)
    assert code == 0, first
    code, second = run(*args)
    assert code == 0, second
    assert json.loads(first)["pr"] == json.loads(second)["pr"]
    assert open_pulls(world.client) == [(json.loads(first)["pr"], "vault/hook-1")]


def test_same_id_with_other_content_is_a_conflict(world: World) -> None:
    base = ("request", "noop", "--id", "noop-x-1", "--ops", str(world.ops), "--open-pr")
    code, out = run(*base, "--context", "first")
    assert code == 0, out
    code, out = run(*base, "--context", "second")
    assert code == 1
    assert out.startswith("Error: ")
    assert len(open_pulls(world.client)) == 1


def test_generated_ids_skip_ids_of_open_proposals(world: World) -> None:
    base = ("request", "noop", "--ops", str(world.ops), "--open-pr", "--json")
    code, first = run(*base, "--context", "one")
    assert code == 0, first
    code, second = run(*base, "--context", "two")
    assert code == 0, second
    one, two = json.loads(first)["id"], json.loads(second)["id"]
    assert one.endswith("-1") and two.endswith("-2")
    assert one[:-2] == two[:-2]
    assert len(open_pulls(world.client)) == 2


def test_invalid_request_opens_nothing(world: World) -> None:
    code, out = run(
        "request",
        "http-hook",
        "--param",
        "url=not a url",
        "--context",
        "x",
        "--ops",
        str(world.ops),
        "--open-pr",
    )
    assert code == 1
    assert "$.params.url" in out
    assert open_pulls(world.client) == []


def test_text_output_names_the_pr(world: World) -> None:
    code, out = run(
        "request",
        "noop",
        "--context",
        "smoke",
        "--id",
        "smoke-1",
        "--ops",
        str(world.ops),
        "--open-pr",
    )
    assert code == 0, out
    assert out.startswith("proposed vault/actions/smoke-1.toml (tier low) in PR #")
    assert "/acme/ops/pulls/" in out


def test_config_only_goes_with_open_pr(world: World, tmp_path: Path) -> None:
    config = tmp_path / "opsvault.toml"
    config.write_text("")
    code, out = run(
        "request",
        "noop",
        "--context",
        "x",
        "--ops",
        str(world.ops),
        "--config",
        str(config),
    )
    assert code == 2
    assert "--open-pr" in out


def test_without_open_pr_the_file_is_written_as_before(world: World) -> None:
    code, out = run(
        "request",
        "noop",
        "--context",
        "x",
        "--id",
        "local-1",
        "--ops",
        str(world.ops),
        "--json",
    )
    assert code == 0, out
    assert json.loads(out) == {
        "schema": "opsvault.request/1",
        "ok": True,
        "id": "local-1",
        "path": "vault/actions/local-1.toml",
        "tier": "low",
    }
    assert (world.ops / "vault" / "actions" / "local-1.toml").is_file()
    assert open_pulls(world.client) == []


def test_forge_comes_from_the_configuration(
    fake_forgejo: FakeForgejo,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    forge = fake_forgejo
    token = forge.add_user("dev-bot", is_bot=True)
    forge.add_org("acme")
    forge.create_repo("acme", "ops", template_files())
    forge.add_collaborator("acme/ops", "dev-bot", "write")
    ops = tmp_path / "ops"
    create_ops_repo(ops)
    config = tmp_path / "opsvault.toml"
    config.write_text(
        f'[forge]\nkind = "forgejo"\nurl = "{forge.url}"\nrepo = "acme/ops"\n'
    )
    monkeypatch.setenv("OPSVAULT_FORGE_TOKEN", token)
    code, out = run(
        "request",
        "noop",
        "--context",
        "via config",
        "--id",
        "cfg-1",
        "--ops",
        str(ops),
        "--open-pr",
        "--config",
        str(config),
        "--json",
    )
    assert code == 0, out
    client = client_for(forge, token)
    try:
        pull = client.fetch_pull_request(json.loads(out)["pr"])
    finally:
        client.close()
    assert pull.head_ref == "vault/cfg-1"


def test_local_mode_proposal_shows_up_in_status(tmp_path: Path) -> None:
    ops = tmp_path / "ops"
    create_ops_repo(ops)
    config = tmp_path / "opsvault.toml"
    config.write_text(f'[forge]\nkind = "local"\npath = "{ops}"\n')
    args = ("request", "noop", "--context", "local", "--id", "loc-1", "--ops", str(ops))
    code, out = run(*args, "--open-pr", "--config", str(config), "--json")
    assert code == 0, out
    assert json.loads(out)["branch"] == "vault/loc-1"
    assert not (ops / "vault" / "actions" / "loc-1.toml").exists()
    code, out = run("status", "--ops", str(ops), "--json")
    assert code == 0, out
    (proposal,) = json.loads(out)["proposals"]
    assert (proposal["branch"], proposal["tier"], proposal["action_ids"]) == (
        "vault/loc-1",
        "low",
        ["loc-1"],
    )
