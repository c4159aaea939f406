from __future__ import annotations

from pathlib import Path

import pytest

from opsvault.dispatcher.secrets import ChainSecrets, DirectorySecrets, EnvSecrets
from opsvault.errors import RunnerError


def test_directory_secret_strips_one_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "TOKEN").write_text("abc\n\n")
    (tmp_path / "CRLF").write_bytes(b"xyz\r\n")
    secrets = DirectorySecrets(tmp_path)
    assert secrets.get("TOKEN") == "abc\n"
    assert secrets.get("CRLF") == "xyz"
    assert secrets.get("ABSENT") is None


@pytest.mark.parametrize("name", ["token", "../TOKEN", "A/B", "", "1A", "A-B", "A.B"])
def test_invalid_secret_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(RunnerError) as info:
        DirectorySecrets(tmp_path).get(name)
    assert info.value.command == f"secret {name!r}"
    with pytest.raises(RunnerError):
        EnvSecrets({}).get(name)


def test_directory_secret_symlinked_outside_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("host file")
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "ESCAPE").symlink_to(tmp_path / "outside")
    with pytest.raises(RunnerError, match="resolves outside"):
        DirectorySecrets(secrets_dir).get("ESCAPE")


def test_directory_secret_symlinked_inside_is_followed(tmp_path: Path) -> None:
    # The layout of a Kubernetes secret volume.
    (tmp_path / "..data").mkdir()
    (tmp_path / "..data" / "TOKEN").write_text("k8s-value")
    (tmp_path / "TOKEN").symlink_to("..data/TOKEN")
    assert DirectorySecrets(tmp_path).get("TOKEN") == "k8s-value"


def test_env_secrets_read_only_prefixed_names() -> None:
    env = {"OPSVAULT_SECRET_TOKEN": "from-env", "TOKEN": "bare"}
    secrets = EnvSecrets(env)
    assert secrets.get("TOKEN") == "from-env"
    assert secrets.get("OTHER") is None
    assert "from-env" not in repr(secrets)


def test_chain_asks_sources_in_order(tmp_path: Path) -> None:
    (tmp_path / "TOKEN").write_text("from-dir")
    chain = ChainSecrets(
        DirectorySecrets(tmp_path),
        EnvSecrets({"OPSVAULT_SECRET_TOKEN": "e", "OPSVAULT_SECRET_B": "b"}),
    )
    assert chain.get("TOKEN") == "from-dir"
    assert chain.get("B") == "b"
    assert chain.get("C") is None
