"""Helpers shared by the forge tests: recorded responses and constants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESPONSES = Path(__file__).parent / "responses"
TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f12345678"
AUTH = {"Authorization": f"token {TOKEN}"}
API = "/api/v1"
REPO = "/api/v1/repos/acme/ops"
HEAD = "a3c1f0e2b4d6f8091a2b3c4d5e6f708192a3b4c5"


def load_json(name: str) -> Any:
    return json.loads((RESPONSES / name).read_text(encoding="utf-8"))


def load_http(name: str) -> tuple[dict[str, str], str]:
    """Split a recorded ``.http`` file into its headers and its body."""
    raw = (RESPONSES / name).read_text(encoding="utf-8")
    head, _, body = raw.partition("\n\n")
    headers = dict(line.split(": ", 1) for line in head.splitlines() if line)
    headers.pop("Content-Length", None)
    return headers, body.strip()
