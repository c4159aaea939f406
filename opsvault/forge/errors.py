"""Forge errors that only the forge package raises, all under ``ForgeError``."""

from __future__ import annotations

from opsvault.errors import ForgeError, ForgeUnavailable


class ForgeBudgetExceeded(ForgeError):
    """A tick made more forge requests than its budget allows."""

    def __init__(self, limit: int, used: int) -> None:
        self.limit = limit
        self.used = used
        super().__init__(
            f"forge: request budget of {limit!r} exhausted after {used!r} requests; "
            "the rest waits for the next tick"
        )


class ForgeOutcomeUnknown(ForgeUnavailable):
    """A write was sent but its answer was lost (timeout, dropped connection, 5xx).

    The forge may or may not have applied it: read the state back before any
    retry. The client does that itself for every write it exposes.
    """

    where: str

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}; the write may have been applied")


class WebhookRejected(ForgeError):
    """A webhook delivery failed verification or could not be parsed."""

    where: str

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")
