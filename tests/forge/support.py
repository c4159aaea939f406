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

# fixture file -> swagger definition; "[X]" means an array of X.
DEFINITIONS = {
    "branch-protection-main.json": "BranchProtection",
    "combined-status.json": "CombinedStatus",
    "comment-created.json": "Comment",
    "comment-edited.json": "Comment",
    "comments-7.json": "[Comment]",
    "commit-status.json": "CommitStatus",
    "contents-action.json": "ContentsResponse",
    "error-branch-delete.json": "APIError",
    "error-branch-exists.json": "APIError",
    "error-head-out-of-date.json": "APIError",
    "error-not-allowed.json": "APIError",
    "error-not-found.json": "APINotFound",
    "error-pull-exists.json": "APIError",
    "error-try-again-later.json": "APIError",
    "file-response.json": "FileResponse",
    "files-response.json": "FilesResponse",
    "issue-7-labels.json": "[Label]",
    "issues.json": "[Issue]",
    "label-created.json": "Label",
    "labels.json": "[Label]",
    "permission-alice.json": "RepoCollaboratorPermission",
    "pull-7-closed.json": "PullRequest",
    "pull-7-files-stale.json": "[ChangedFile]",
    "pull-7-files.json": "[ChangedFile]",
    "pull-7-merged.json": "PullRequest",
    "pull-7-open.json": "PullRequest",
    "review-approved.json": "PullReview",
    "teams-acme.json": "[Team]",
    "user-alice.json": "User",
    "user-opsvault-bot.json": "User",
}


def load_json(name: str) -> Any:
    return json.loads((RESPONSES / name).read_text(encoding="utf-8"))


def load_http(name: str) -> tuple[dict[str, str], str]:
    """Split a recorded ``.http`` file into its headers and its body."""
    raw = (RESPONSES / name).read_text(encoding="utf-8")
    head, _, body = raw.partition("\n\n")
    headers = dict(line.split(": ", 1) for line in head.splitlines() if line)
    headers.pop("Content-Length", None)
    return headers, body.strip()
