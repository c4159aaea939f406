"""State files are replaced atomically and durably, by one helper (opsvault/atomic_write.py)."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from opsvault.atomic_write import write_atomic

PACKAGE = Path(__file__).resolve().parent.parent / "opsvault"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_writes_and_replaces_leaving_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state" / "deep" / "forge.json"
    write_atomic(target, b"one\n")
    write_atomic(target, b"two\n")
    assert target.read_bytes() == b"two\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["forge.json"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 & ~_umask()


def test_mode_is_given_before_the_umask(tmp_path: Path) -> None:
    target = tmp_path / "runner.json"
    write_atomic(target, b"{}\n", mode=0o666)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()


def test_file_and_directory_are_synced_before_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        synced.append("dir" if stat.S_ISDIR(info.st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_atomic(tmp_path / "cache.json", b"x")
    assert synced == ["file", "dir"]


def test_a_failed_rename_keeps_the_old_content_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "forge.json"
    write_atomic(target, b"old")

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["forge.json"]


def _replacing_calls(path: Path) -> list[str]:
    """Return the renames and temporary files *path* makes (``str.replace`` has 2+ args)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        if name in {"rename", "mkstemp", "NamedTemporaryFile"} or (
            name == "replace"
            and (
                (isinstance(node.func.value, ast.Name) and node.func.value.id == "os")
                or (len(node.args) == 1 and not node.keywords)
            )
        ):
            found.append(name)
    return found


def test_no_other_module_replaces_files_itself() -> None:
    """Every rename in opsvault goes through write_atomic.

    The exception, git/worktree.py, writes work-tree files the way git does
    (relative to a directory descriptor, never through a link; no fsync, as git).
    """
    found = {
        str(path.relative_to(PACKAGE)): calls
        for path in sorted(PACKAGE.rglob("*.py"))
        if (calls := _replacing_calls(path))
    }
    assert found == {"atomic_write.py": ["replace"], "git/worktree.py": ["replace"]}
