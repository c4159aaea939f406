"""Text people read: aligned tables, and colour only on a terminal that wants it.

Colour follows https://no-color.org: never when ``NO_COLOR`` is set to anything
non-empty, never when standard output is not a terminal (a pipe, a file, a
test), and only then when click's context does not say otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import click

from opsvault.cli.options import shown

# Colour of the words the eye looks for; everything else stays plain.
WORD_COLOURS = {
    "low": "green",
    "medium": "yellow",
    "high": "red",
    "invalid": "red",
    "refused": "red",
    "succeeded": "green",
    "failed": "red",
    "rejected": "magenta",
    "expired": "magenta",
    "interrupted": "red",
    "STALE": "red",
    "HALTED": "red",
    "WARNING": "yellow",
}


def colour_enabled(ctx: click.Context | None = None) -> bool:
    """Whether to colour what is printed on standard output."""
    if os.environ.get("NO_COLOR", ""):
        return False
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is not None and ctx.color is not None:
        return ctx.color
    from click import _compat

    # click's own terminal test (what click.echo strips colour by); its test
    # runner replaces it, so `CliRunner(...).invoke(..., color=True)` is a terminal.
    return not _compat.should_strip_ansi(sys.stdout)


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    colour: str | None = None


def cell(text: str | None, colour: str | None = None) -> Cell:
    """A cell of proposer-influenced *text* (control characters escaped), coloured by its word."""
    value = shown(text) if text else "-"
    return Cell(value, colour or WORD_COLOURS.get(value.split(" ")[0]))


def paint(text: str, colour: str | None, on: bool) -> str:
    return click.style(text, fg=colour) if on and colour else text


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    on: bool,
    indent: str = "  ",
) -> list[str]:
    """Return *rows* under *header* with every column as wide as its widest cell.

    Widths are measured before colour is added, so the columns line up either
    way; the last column is not padded.
    """
    if not rows:
        return []
    columns = len(header)
    widths = [
        max(len(header[i]), *(len(r[i].text) for r in rows)) for i in range(columns)
    ]

    def line(cells: Sequence[Cell], bold: bool = False) -> str:
        parts = []
        for i, c in enumerate(cells):
            pad = "" if i == columns - 1 else " " * (widths[i] - len(c.text))
            text = click.style(c.text, bold=True) if bold and on else c.text
            parts.append(paint(text, c.colour, on) + pad)
        return (indent + "  ".join(parts)).rstrip()

    return [line([Cell(h) for h in header], bold=True), *(line(r) for r in rows)]
