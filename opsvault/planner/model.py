"""Values of the planner: the lines of ``prerequisites.md`` and the facts it is checked against.

A :class:`Plan` is the file as a tuple of typed lines. Every line keeps its exact
text and line ending, so rendering is concatenation and nothing the planner does
not understand is ever rewritten. The parsed fields of a line (``checked``,
``refs``, ``markers``, ``word``) are derived from its text by
:func:`opsvault.planner.render.parse_plan`; build lines through the parser, not by
hand, so that the text and the fields always agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class IssueState(StrEnum):
    """What the forge says about a referenced issue."""

    OPEN = "open"
    CLOSED = "closed"
    MISSING = "missing"


class StatusWord(StrEnum):
    """The status words the planner understands, as written after ``Status:``."""

    DONE = "DONE"
    BLOCKED = "BLOCKED"
    READY = "READY"
    IN_PROGRESS = "IN PROGRESS"


class VaultState(StrEnum):
    """Where a vault action is in its life, as far as the ops repo shows it."""

    PENDING = "pending"
    RUNNING = "running"
    FIRED = "fired"
    REJECTED = "rejected"
    ABSENT = "absent"


@dataclass(frozen=True, slots=True)
class IssueRef:
    """``#12`` (``repo`` None: the default issues repo) or ``acme/app#12``."""

    repo: str | None
    number: int

    def __str__(self) -> str:
        return f"{self.repo or ''}#{self.number}"


def ref_sort_key(ref: IssueRef) -> tuple[str, int]:
    """Order references the way people read them: default repo first, then by number."""
    return (ref.repo or "", ref.number)


_ACTION_SUFFIXES = (".result.json", ".toml", ".json", ".md")


@dataclass(frozen=True, slots=True)
class VaultMarker:
    """One ``blocked-on-vault`` marker; ``target`` is a path, an action id, or None."""

    target: str | None

    @property
    def is_path(self) -> bool:
        return self.target is not None and "/" in self.target

    @property
    def action_id(self) -> str | None:
        """Return the action id the target names: the id itself, or a path's file stem."""
        if self.target is None:
            return None
        name = self.target.rstrip("/").rsplit("/", 1)[-1]
        for suffix in _ACTION_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)]
        return name


@dataclass(frozen=True, slots=True)
class VaultFacts:
    """The vault as the planner sees it.

    ``pending``: ids in ``vault/actions/`` or with an open proposal; ``running``,
    ``fired``, ``rejected``: ids in those directories; ``existing_paths``: the
    marker paths (relative to the ops repo root) that exist.
    """

    pending: frozenset[str] = frozenset()
    running: frozenset[str] = frozenset()
    fired: frozenset[str] = frozenset()
    rejected: frozenset[str] = frozenset()
    existing_paths: frozenset[str] = frozenset()

    def state_of(self, action_id: str) -> VaultState:
        """Return the state of *action_id*; a live (pending/running) action wins."""
        if action_id in self.running:
            return VaultState.RUNNING
        if action_id in self.pending:
            return VaultState.PENDING
        if action_id in self.fired:
            return VaultState.FIRED
        if action_id in self.rejected:
            return VaultState.REJECTED
        return VaultState.ABSENT


# Lines. ``text`` is the line without its ending; ``eol`` is "\n", "\r\n", "\r",
# or "" for a last line without one.


@dataclass(frozen=True, slots=True)
class RawLine:
    """A line the planner does not interpret (prose, blank lines, code blocks)."""

    text: str
    eol: str


@dataclass(frozen=True, slots=True)
class DateLine:
    """``<!-- Last updated: YYYY-MM-DD -->`` (anything after the date is kept)."""

    text: str
    eol: str
    date: str


@dataclass(frozen=True, slots=True)
class ObjectiveLine:
    """``## Objective: <title>``; starts an objective."""

    text: str
    eol: str
    level: int
    title: str


@dataclass(frozen=True, slots=True)
class MilestoneLine:
    """``## --- ADOPTION MILESTONE: IN PROGRESS ---``; ends an objective, kept as is."""

    text: str
    eol: str
    level: int
    label: str


@dataclass(frozen=True, slots=True)
class HeadingLine:
    """Any other Markdown heading; ends an objective of the same or a deeper level."""

    text: str
    eol: str
    level: int


@dataclass(frozen=True, slots=True)
class ItemLine:
    """``- [ ] text`` or ``- [x] text`` with its issue references and vault markers."""

    text: str
    eol: str
    checked: bool
    refs: tuple[IssueRef, ...]
    markers: tuple[VaultMarker, ...]


@dataclass(frozen=True, slots=True)
class StatusLine:
    """``Status: WORD[ suffix]``; ``word`` is None when the text is not a known word."""

    text: str
    eol: str
    word: StatusWord | None
    detail: str


Line = (
    RawLine
    | DateLine
    | ObjectiveLine
    | MilestoneLine
    | HeadingLine
    | ItemLine
    | StatusLine
)


@dataclass(frozen=True, slots=True)
class Plan:
    """The whole file; ``lines[0]`` is line 1."""

    lines: tuple[Line, ...]

    def line(self, number: int) -> Line:
        """Return the line with 1-based *number*."""
        return self.lines[number - 1]


@dataclass(frozen=True, slots=True)
class Objective:
    """A view of one objective: line numbers (1-based) of its parts."""

    line: int
    title: str
    end: int
    items: tuple[int, ...]
    statuses: tuple[int, ...]

    @property
    def status(self) -> int | None:
        """Return the line of the Status line the planner maintains (the first one)."""
        return self.statuses[0] if self.statuses else None


def objectives(plan: Plan) -> tuple[Objective, ...]:
    """Return the objectives of *plan* in file order.

    An objective runs from its heading to the line before the next heading of
    the same or a shallower level (another objective, a milestone line, any
    heading) or to the end of the file.
    """
    found: list[Objective] = []
    start: ObjectiveLine | None = None
    start_no = 0
    items: list[int] = []
    statuses: list[int] = []

    def close(end: int) -> None:
        if start is not None:
            found.append(
                Objective(start_no, start.title, end, tuple(items), tuple(statuses))
            )

    for number, line in enumerate(plan.lines, start=1):
        if isinstance(line, ObjectiveLine | MilestoneLine | HeadingLine) and (
            start is None or line.level <= start.level
        ):
            close(number - 1)
            start = None
            items, statuses = [], []
            if isinstance(line, ObjectiveLine):
                start, start_no = line, number
        elif start is not None and isinstance(line, ItemLine):
            items.append(number)
        elif start is not None and isinstance(line, StatusLine):
            statuses.append(number)
    close(len(plan.lines))
    return tuple(found)


def refs(plan: Plan) -> frozenset[IssueRef]:
    """Return every issue reference in the items of *plan* (what the shell must fetch)."""
    return frozenset(
        ref for line in plan.lines if isinstance(line, ItemLine) for ref in line.refs
    )


def marker_paths(plan: Plan) -> frozenset[str]:
    """Return every ``blocked-on-vault`` target that is a path (the shell tests existence)."""
    return frozenset(
        marker.target
        for line in plan.lines
        if isinstance(line, ItemLine)
        for marker in line.markers
        if marker.target is not None and marker.is_path
    )


class EditKind(StrEnum):
    """What an edit of the updater changed on a line (not a git change: see policy.change)."""

    CHECK = "check"
    UNCHECK = "uncheck"
    ANNOTATION = "annotation"
    MARKER = "marker"
    STATUS = "status"
    DATE = "date"


@dataclass(frozen=True, slots=True)
class Change:
    """One edit the updater made: where, what kind, and why, in words."""

    line: int
    kind: EditKind
    reason: str


def join_refs(refs_: Iterable[IssueRef]) -> str:
    """Return ``#1, acme/app#2`` in reading order."""
    return ", ".join(str(ref) for ref in sorted(set(refs_), key=ref_sort_key))
