"""The record chain (ADR 0021): every record names the hash of the record before it.

A *record* is a file the dispatcher writes to the base branch:
``vault/running/<id>.claim.json`` (a claim) or a ``*.result.json`` below
``vault/fired/`` or ``vault/rejected/`` (a result, refusal, rejection, expiry,
interruption). Records are ordered by the first-parent history of the base
branch, oldest first, and within one commit by path. Each carries

- ``chain_prev``: ``sha256:<hex>`` of the bytes of the record before it, or
  ``genesis`` for the first record of the chain, and
- ``chain_base``: the commit its push was based on (its commit's first parent),

and the commit writing records ends with the line ``Vault-Chain: sha256:<hex>``,
the hash of its last record: the head the next commit links to. A record's hash
is the SHA-256 of the file exactly as committed (the dispatcher renders it
canonically: sorted keys, two-space indent), so editing, removing or reordering
a record changes what its successor should name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from opsvault.dispatcher.records import (
    parse_claim,
    parse_record,
    render_claim,
    render_record,
)
from opsvault.git.base import OpsRepo
from opsvault.layout import FIRED, REJECTED, RUNNING

GENESIS = "genesis"
TRAILER = "Vault-Chain"
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
_TRAILER_LINE = re.compile(rf"^{TRAILER}: (?P<head>sha256:[0-9a-f]{{64}})$")

CLAIM_SUFFIX = ".claim.json"
RESULT_SUFFIX = ".result.json"


def record_hash(content: bytes) -> str:
    """Return the chain hash of a record's committed bytes: ``sha256:<hex>``."""
    return f"sha256:{hashlib.sha256(content).hexdigest()}"


def is_hash(text: object) -> bool:
    """Return whether *text* is a chain hash (``sha256:`` and 64 lower-case hex digits)."""
    return isinstance(text, str) and _HASH.fullmatch(text) is not None


def is_claim_path(path: str) -> bool:
    return path.startswith(f"{RUNNING}/") and path.endswith(CLAIM_SUFFIX)


def is_result_path(path: str) -> bool:
    return path.endswith(RESULT_SUFFIX) and path.startswith(
        (f"{FIRED}/", f"{REJECTED}/")
    )


def is_record_path(path: str) -> bool:
    """Return whether *path* holds a record (a claim or a result) when written to the base branch."""
    return is_claim_path(path) or is_result_path(path)


def chain_trailer(head: str) -> str:
    """Return the last line of a commit whose last record hashes to *head*."""
    return f"{TRAILER}: {head}"


def parse_chain_trailer(message: str) -> str | None:
    """Return the head named on the *last* non-empty line of *message*, or None."""
    lines = message.strip().splitlines()
    found = _TRAILER_LINE.match(lines[-1].strip()) if lines else None
    return found["head"] if found else None


@dataclass(frozen=True, slots=True)
class Link:
    """Where one record sits in the chain: the hash before it and the commit it was written on."""

    prev: str
    base: str


Relink = Callable[[str, bytes, Link], bytes]
"""Return the record at a path, rendered again with *link* as its chain fields."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A commit's changes with every record linked, and what the commit must say."""

    changes: dict[str, bytes | None]
    head: str | None  # the hash of its last record; None when it writes none
    hashes: dict[str, str]  # record path -> its hash (the anchors of results)

    def message(self, text: str) -> str:
        """Return *text* with the chain trailer as its last line when records are written."""
        if self.head is None:
            return text
        return f"{text.rstrip()}\n\n{chain_trailer(self.head)}"


def seal(
    changes: Mapping[str, bytes | None], head: str | None, base: str, relink: Relink
) -> Sealed:
    """Return *changes* with each record linked to the one before it, in path order.

    *head* is the chain head at *base* (``None``: the chain starts here, with
    ``genesis``); *base* is the commit the changes are committed on. Call it
    last, on the bytes that are committed (after redaction): the hashes are of
    exactly those bytes. Paths that are no records pass unchanged.
    """
    sealed = dict(changes)
    hashes: dict[str, str] = {}
    prev = head or GENESIS
    for path in sorted(p for p, c in changes.items() if c is not None):
        if not is_record_path(path):
            continue
        content = relink(path, changes[path] or b"", Link(prev, base))
        sealed[path] = content
        prev = hashes[path] = record_hash(content)
    return Sealed(sealed, prev if hashes else None, hashes)


MAX_HEAD_WALK = 100_000  # first-parent commits searched for the chain head


def chain_head(repo: OpsRepo, commit: str, limit: int = MAX_HEAD_WALK) -> str | None:
    """Return the chain head at *commit*: the trailer of the newest records commit, or None.

    Walks *commit*'s first parents back to the newest commit with one parent
    whose last line is a ``Vault-Chain`` trailer. Merges never count: their
    message holds text a proposer chose, and the dispatcher writes records only
    in commits of its own (one parent). None when there is none: the chain
    starts at the next record (``genesis``).
    """
    current: str | None = commit
    for _ in range(limit):
        if current is None:
            return None
        info = repo.commit_info(current)
        if len(info.parents) <= 1:
            head = parse_chain_trailer(info.message)
            if head is not None:
                return head
        current = info.parents[0] if info.parents else None
    return None


def relink_record(path: str, content: bytes, link: Link) -> bytes:
    """Return the claim or result record *content* rendered again with *link* (a ``Relink``)."""
    if is_claim_path(path):
        claim = parse_claim(content, path)
        return render_claim(replace(claim, chain_prev=link.prev, chain_base=link.base))
    record = parse_record(content, path)
    return render_record(replace(record, chain_prev=link.prev, chain_base=link.base))


def seal_commit(
    repo: OpsRepo, base: str, changes: Mapping[str, bytes | None], message: str
) -> tuple[dict[str, bytes | None], str, dict[str, str]]:
    """Return (changes, message, record hashes) of a commit on *base*, its records chained.

    The chain head is read from *base* itself, the commit the push is based on:
    a push that loses the compare-and-swap is planned and sealed again on the
    new base, so the chain stays linear across replicas (ADR 0002, 0021).
    """
    if not any(is_record_path(p) and c is not None for p, c in changes.items()):
        return dict(changes), message, {}
    sealed = seal(changes, chain_head(repo, base), base, relink_record)
    return sealed.changes, sealed.message(message), sealed.hashes


def anchor_of(hashes: Mapping[str, str], action_id: str) -> str | None:
    """Return the hash of *action_id*'s result among a commit's *hashes*, or None.

    Its result is ``<id>.result.json`` (or a numbered ``<id>.<n>.result.json``
    when the name was taken) in an archive month folder, never under ``pr-<N>/``.
    """
    for path in sorted(hashes):
        if not is_result_path(path):
            continue
        stem = path.rsplit("/", 1)[1].removesuffix(RESULT_SUFFIX)
        if "/pr-" not in path and (
            stem == action_id
            or (
                stem.startswith(f"{action_id}.")
                and stem[len(action_id) + 1 :].isdigit()
            )
        ):
            return hashes[path]
    return None


def with_anchor(text: str, anchor: str | None) -> str:
    """Return *text* naming the record's hash: the anchor outside the repo (ADR 0021)."""
    return text if anchor is None else f"{text} (record `{anchor}`)"
