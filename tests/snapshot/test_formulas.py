"""Formulas of a snapshot: built-ins overlaid with the ops repo's, parsed when looked up."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from opsvault._resources import data_dir
from opsvault.errors import FileTooLargeError
from opsvault.snapshot import DirSnapshot, load_formulas

NOOP = (data_dir("formulas") / "noop.toml").read_text()


class CountingSnapshot:
    """A directory snapshot that records the files read."""

    def __init__(self, root: Path) -> None:
        self.inner = DirSnapshot(root)
        self.reads: list[str] = []

    @property
    def label(self) -> str:
        return self.inner.label

    def read_file(self, path: str) -> bytes | None:
        self.reads.append(path)
        return self.inner.read_file(path)

    def list_files(self, prefix: str) -> tuple[str, ...]:
        return self.inner.list_files(prefix)

    def list_dirs(self, prefix: str) -> tuple[str, ...]:
        return self.inner.list_dirs(prefix)


def ops(tmp_path: Path, formulas: dict[str, str]) -> Path:
    root = tmp_path / "ops"
    shutil.copytree(data_dir("ops-template"), root)
    folder = root / "vault" / "formulas"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in formulas.items():
        (folder / f"{name}.toml").write_text(text)
    return root


def local_noop(name: str) -> str:
    return NOOP.replace('name = "noop"', f'name = "{name}"')


def test_a_lookup_parses_only_the_formula_it_names(tmp_path: Path) -> None:
    snapshot = CountingSnapshot(
        ops(tmp_path, {f"mine-{i}": local_noop(f"mine-{i}") for i in range(20)})
    )
    formulas = load_formulas(snapshot)
    assert formulas["mine-7"].name == "mine-7"
    assert snapshot.reads == ["vault/formulas/mine-7.toml"]
    assert formulas.get("noop") is not None  # a built-in: no ops file read
    assert formulas.get("../../etc/passwd") is None
    assert snapshot.reads == ["vault/formulas/mine-7.toml"]


def test_an_invalid_ops_formula_is_left_out_and_a_builtin_of_its_name_stays(
    tmp_path: Path,
) -> None:
    formulas = load_formulas(
        DirSnapshot(
            ops(
                tmp_path,
                {
                    "noop": "this is = not [valid",
                    "broken": "name = 1\n",
                    "wrong-stem": local_noop("other"),
                    "extra": local_noop("extra"),
                },
            )
        )
    )
    assert formulas["noop"].name == "noop"  # the built-in
    assert "broken" not in formulas and "wrong-stem" not in formulas
    builtin = sorted(p.stem for p in data_dir("formulas").glob("*.toml"))
    assert list(formulas) == [*builtin, "extra"]  # built-ins first, as before
    assert len(formulas) == len(builtin) + 1


def test_an_ops_formula_too_large_to_read_fails_its_lookup(tmp_path: Path) -> None:
    root = ops(tmp_path, {"noop": "# padding\n" * 200_000})
    with pytest.raises(FileTooLargeError):
        load_formulas(DirSnapshot(root)).get("noop")
