"""The error hierarchy. Every expected failure derives from OpsvaultError.

Each exception builds its message from its fields, shaped
``<where>: <what is wrong>[; <what to do>]``, so tests assert on fields and
people read one line. The CLI maps ``exit_code`` to the process exit status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class OpsvaultError(Exception):
    """Base of every expected failure (exit 1)."""

    exit_code = 1


class ConfigError(OpsvaultError):
    """A configuration file or setting is wrong (exit 78, EX_CONFIG)."""

    exit_code = 78

    def __init__(self, where: str, problem: str, hint: str = "") -> None:
        self.where = where
        self.problem = problem
        self.hint = hint
        message = f"{where}: {problem}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem found in a file: a JSON path (``$.params.site``) and a message."""

    path: str
    message: str

    def render(self, where: str) -> str:
        return f"{where}: {self.path}: {self.message}"


class InvalidFileError(OpsvaultError):
    """A file failed validation; carries every problem found, not only the first."""

    kind = "file"

    def __init__(self, where: str, problems: Iterable[Problem]) -> None:
        self.where = where
        self.problems = tuple(problems)
        lines = [p.render(where) for p in self.problems] or [
            f"{where}: invalid {self.kind}"
        ]
        super().__init__("\n".join(lines))


class FileTooLargeError(InvalidFileError):
    """A file is bigger than its reader allows; found from the object header, before reading it."""

    def __init__(self, where: str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            where,
            [
                Problem(
                    "$",
                    f"file is {size} bytes, over the limit of {limit}; split or shorten it",
                )
            ],
        )


class InvalidRequestError(InvalidFileError):
    """An action file (a request) is invalid."""

    kind = "action"


class InvalidFormulaError(InvalidFileError):
    """A formula file is invalid."""

    kind = "formula"


class PolicyError(InvalidFileError):
    """``vault/policy.toml`` is invalid. Exit 78: policy is configuration."""

    kind = "policy"
    exit_code = 78


class GitError(OpsvaultError):
    """A git operation failed (pygit2's errors are translated in git/revisions.py and git/treediff.py)."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


class PushRejected(GitError):
    """A non-force push was rejected: someone else moved the branch first."""


class ForgeError(OpsvaultError):
    """A forge (Forgejo) request failed."""


class ForgeAuthError(ForgeError):
    """401/403: the token is invalid or lacks a scope."""


class ForgeNotFound(ForgeError):
    """404: the object does not exist (or is invisible to the token)."""


class ForgeConflict(ForgeError):
    """409 and friends: the request conflicts with the current state (e.g. a moved head)."""


class ForgeUnavailable(ForgeError):
    """5xx, timeouts or connection errors after retries: try again later (exit 75)."""

    exit_code = 75


class RunnerError(OpsvaultError):
    """Executing a step failed in a way that is not the step's own exit status."""

    def __init__(
        self,
        command: str,
        problem: str,
        exit_code_seen: int | None = None,
        output_tail: str = "",
    ) -> None:
        self.command = command
        self.problem = problem
        self.exit_code_seen = exit_code_seen
        self.output_tail = output_tail
        super().__init__(f"{command}: {problem}")
