"""Render the status page with jinja2, autoescaping everything (ADR 0016).

Ids, contexts, branch names, HALT notes and tick errors come from proposers or
from what they pushed; the template never marks any of them safe, so each is
HTML-escaped wherever it lands (text or attribute). ``StrictUndefined`` turns a
misspelt field into an error in the tests instead of an empty cell.
"""

from __future__ import annotations

from functools import cache

import jinja2

from opsvault.web.view import Page


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("opsvault.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(page: Page) -> str:
    """Return the HTML of the status page."""
    return _environment().get_template("status.html").render(page=page)
