"""Each class name of opsvault means one thing (issue 10 item 8: two ``Outcome``, two ``ChangeKind``)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "opsvault"

# Names that may stand for two classes, each with its reason (none today: the
# last two, forge Conversation and cli Source, became CommentCalls and InputFile).
KNOWN: set[str] = set()


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


# A module name several packages use, and the one meaning it has in each: a
# `vault <command>` module in cli/ is named after its command, beside the domain
# module the command calls. "local.py" (local mode: forge/local.py alone) and
# "report.py" (a tick's report: dispatcher/report.py alone) are not here.
SHARED_MODULE_NAMES = {
    "classify.py": {"cli", "policy"},  # `vault classify`; the classifier
    "hold.py": {"cli", "dispatcher"},  # `vault hold`; the hold decided from a timeline
    "request.py": {"cli", "vault"},  # `vault request`; the action file format
    "status.py": {"cli", "dispatcher"},  # `vault status`; the status model
    "suggest.py": {"cli", "policy"},  # `vault policy suggest`; tiers from history
    "errors.py": {"opsvault", "forge"},  # the error model; the forge's own errors
    "model.py": {"planner", "policy"},  # each package's value types
    "parse.py": {"forge", "policy"},  # each package's input turned into its values
    "service.py": {"dispatcher", "web"},  # the scheduler; the page's wiring into it
}


def test_a_module_name_used_twice_means_one_kind_of_thing() -> None:
    found: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        if path.name != "__init__.py":
            found[path.name].add(path.parent.name)
    shared = {name: where for name, where in found.items() if len(where) > 1}
    assert shared == SHARED_MODULE_NAMES
