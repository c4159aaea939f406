"""Small step programs shipped for built-in formulas, run as ``{python} -m opsvault.steps.X``.

Each one is a self-contained command-line program: it reads its options from
argv, secrets from its environment (never argv), writes a short report to
stdout and exits non-zero on failure.
"""

from __future__ import annotations
