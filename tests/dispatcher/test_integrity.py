"""The pure parts of merge integrity (ADR 0004): the mark and the change manifest."""

from __future__ import annotations

from opsvault.changes import ChangeManifest
from opsvault.dispatcher.integrity import ClassifiedMark, merge_message, parse_mark

BASE = "a" * 40
MANIFEST = ChangeManifest((("knowledge/a.md", "1" * 40), ("old.md", None)))


def test_the_mark_round_trips_through_the_merge_message() -> None:
    message = merge_message(7, "low", BASE, MANIFEST)
    assert parse_mark(message) == ClassifiedMark(7, BASE, MANIFEST.digest())
    # Forgejo prepends its title; git strips trailing whitespace.
    forged_title = "Merge pull request 'x' (#7) from vault/x into main"
    assert parse_mark(f"{forged_title}\n\n{message}\n") == parse_mark(message)


def test_only_the_last_line_is_a_mark() -> None:
    """Proposer text (the PR title) comes before the dispatcher's body, never after."""
    forged = merge_message(7, "low", BASE, ChangeManifest(()))
    assert parse_mark(f"{forged}\n\nReviewed-on: https://forge/pulls/7") is None
    real = merge_message(7, "low", BASE, MANIFEST)
    assert parse_mark(f"Merge '{forged}'\n\n{real}") == parse_mark(real)


def test_malformed_marks_are_no_marks() -> None:
    digest = MANIFEST.digest()
    for line in (
        f"Vault-Classified: pr=0 base={BASE} change=sha256:{digest}",
        f"Vault-Classified: pr=7 base={BASE[:-1]} change=sha256:{digest}",
        f"Vault-Classified: pr=7 base={BASE} change=sha256:{digest} extra",
        f"vault-classified: pr=7 base={BASE} change=sha256:{digest}",
        "",
    ):
        assert parse_mark(line) is None, line


def test_the_digest_depends_on_every_path_and_blob() -> None:
    same = ChangeManifest((("knowledge/a.md", "1" * 40), ("old.md", None)))
    assert same.digest() == MANIFEST.digest()
    for other in (
        ChangeManifest((("knowledge/a.md", "2" * 40), ("old.md", None))),
        ChangeManifest((("knowledge/a.md", "1" * 40),)),
        ChangeManifest((("knowledge/a.md", "1" * 40), ("old.md", "3" * 40))),
    ):
        assert other.digest() != MANIFEST.digest()


def test_differences_name_each_path() -> None:
    landed = ChangeManifest(
        (("knowledge/a.md", "2" * 40), ("vault/policy.toml", "4" * 40))
    )
    assert MANIFEST.differences(landed) == (
        "'knowledge/a.md': landed as blob 222222222222, classified as blob 111111111111",
        "'old.md': classified but not changed by the merge",
        "'vault/policy.toml': changed by the merge but never classified",
    )
