"""Locate the data directories shipped with opsvault (formulas, ops-template, examples).

In a wheel they are force-included as ``opsvault/_data/<name>``. In an editable
install that path does not exist, so fall back to the checkout root. The
package directory is found from ``__file__`` rather than ``importlib.resources``,
whose import (tempfile, shutil, zipfile, lzma) cost a cold `vault classify`
~8 ms (issue 11); opsvault is never imported from a zip.
"""

from __future__ import annotations

from pathlib import Path

DATA_NAMES = ("formulas", "ops-template", "examples")


def data_dir(name: str) -> Path:
    """Return the directory of shipped data *name*; raise LookupError if it is absent."""
    if name not in DATA_NAMES:
        raise LookupError(f"unknown data directory {name!r}")
    packaged = Path(__file__).parent / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    raise LookupError(
        f"opsvault data directory {name!r} is missing from this installation"
    )
