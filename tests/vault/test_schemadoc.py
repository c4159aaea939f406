from __future__ import annotations

from pathlib import Path

from opsvault.vault.schemadoc import render_formats

DOC = Path(__file__).resolve().parents[2] / "docs" / "formats.md"


def test_formats_reference_matches_the_schemas() -> None:
    assert DOC.read_text() == render_formats(), (
        "regenerate: python -m opsvault.vault.schemadoc > docs/formats.md"
    )


def test_every_schema_key_is_documented() -> None:
    text = DOC.read_text()
    for key in (
        "`params.<name>.pattern`",
        "`steps[].run`",
        "`tiers.medium.veto_window`",
        "`rules[].when.secrets_any`",
    ):
        assert key in text
