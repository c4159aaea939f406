"""Each class name of opsvault means one thing (issue 10 item 8: two ``Outcome``, two ``ChangeKind``)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "opsvault"

# Not yet renamed, left while those modules are being changed by other work
# (remove an entry when one of its classes is renamed):
# dispatcher.commands.Conversation (a PR's hold and commands) and
# forge.client_writes.Conversation (the forge calls on comments, timeline, labels);
# cli.files.Source and policy.action.Source (new on main with cli-a's work).
KNOWN = {"Conversation", "Source"}


def class_names() -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                found[node.name].append(str(path.relative_to(PACKAGE.parent)))
    return found


def test_no_two_modules_define_a_class_of_the_same_name() -> None:
    twice = {
        name: where
        for name, where in class_names().items()
        if len(where) > 1 and name not in KNOWN
    }
    assert not twice, f"one name, several classes: {twice}"


def test_the_known_exceptions_still_exist() -> None:
    names = class_names()
    assert all(len(names[name]) > 1 for name in KNOWN), (
        "drop the renamed one from KNOWN"
    )
