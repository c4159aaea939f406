from __future__ import annotations

from datetime import timedelta

import pytest

from opsvault.errors import InvalidFormulaError
from opsvault.snapshot import load_builtin_formulas
from opsvault.vault.duration import parse_duration, render_duration
from opsvault.vault.formula import parse_formula

BASE = 'name = "x-run"\ndescription = "d"\n'


def test_builtin_formulas_are_valid() -> None:
    assert {"noop", "http-hook", "git-make"} <= set(load_builtin_formulas())


def test_name_must_equal_stem() -> None:
    with pytest.raises(InvalidFormulaError, match="file stem"):
        parse_formula(
            BASE + '[[steps]]\nname = "a"\nrun = ["true"]\n', "formulas/other.toml"
        )


def test_undeclared_placeholder_and_bad_pattern_are_reported_together() -> None:
    text = (
        BASE
        + '[params.site]\ntype = "integer"\npattern = "("\n[[steps]]\nname = "a"\nrun = ["echo", "{params.host}"]\n'
    )
    with pytest.raises(InvalidFormulaError) as exc:
        parse_formula(text, "formulas/x-run.toml")
    paths = {p.path for p in exc.value.problems}
    assert paths == {"$.params.site.pattern", "$.steps[0].run[1]"}


def test_secret_placeholders_do_not_exist() -> None:
    text = (
        BASE
        + '[secrets]\nrequired = ["TOKEN"]\n[[steps]]\nname = "a"\nrun = ["curl", "{secrets.TOKEN}"]\n'
    )
    with pytest.raises(InvalidFormulaError):
        parse_formula(text, "formulas/x-run.toml")


def test_unknown_keys_rejected_at_every_level() -> None:
    text = BASE + 'shell = true\n[[steps]]\nname = "a"\nrun = ["true"]\nshell = "sh"\n'
    with pytest.raises(InvalidFormulaError) as exc:
        parse_formula(text, "formulas/x-run.toml")
    assert {p.path for p in exc.value.problems} == {"$.shell", "$.steps[0].shell"}


@pytest.mark.parametrize(
    "text,seconds", [("30s", 30), ("15m", 900), ("2h", 7200), ("7d", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert render_duration(parse_duration(text)) == text


@pytest.mark.parametrize(
    "text", ["0s", "1.5h", "1h30m", " 2h", "2H", "2", "h", "-1m", "2h\n"]
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
