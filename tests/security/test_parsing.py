"""Security invariant I5: parsing is total and bounded; one bad input never stops a tick.

The hostile files of the report (about 600 levels of nested arrays, a
4,400-digit integer) go through every parser, every CLI command that reads
them, and a real dispatcher tick in both modes; a blob of 128 MiB of zeros
shared by eight action files is measured by the peak memory of a tick run in
a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pygit2
import pytest
from click.testing import CliRunner

from opsvault._resources import data_dir
from opsvault.app import build_app
from opsvault.cli import cli
from opsvault.cli.init import create_ops_repo
from opsvault.config import load_settings
from opsvault.dispatcher.claims import read_claim
from opsvault.dispatcher.records import parse_claim, parse_record
from opsvault.dispatcher.tick import tick
from opsvault.errors import InvalidFileError, OpsvaultError
from opsvault.forge.local import LocalForge
from opsvault.forge.types import ListState
from opsvault.git.pygit2_repo import Pygit2OpsRepo
from opsvault.planner.evaluate import decode_plan
from opsvault.policy.cases import parse_case
from opsvault.policy.parse import parse_policy
from opsvault.vault.bounded import TOO_DEEP, TOO_LONG_NUMBER
from opsvault.vault.formula import parse_formula
from opsvault.vault.request import parse_action
from tests.dispatcher.harness import NOOP, T0, Harness, make_harness

DEEP = b"[" * 600 + b"]" * 600
HUGE = b"1" * 4400


def action_with(value: bytes) -> bytes:
    return b'formula = "noop"\ncontext = "x"\nparams = { message = ' + value + b" }\n"


HOSTILE_TOML = {
    "nested arrays": action_with(DEEP),
    "nested inline tables": action_with(b"{a=" * 600 + b"1" + b"}" * 600),
    "big integer": action_with(HUGE),
    "deep dotted key": b"a" + b".a" * 2000 + b" = 1\n",
    "deep table header": b"[" + b"a." * 2000 + b"a]\nb = 1\n",
    "64-bit overflow": action_with(b"9223372036854775808"),
}
HOSTILE_JSON = {
    "nested arrays": b'{"id": ' + DEEP + b"}",
    "nested objects": b'{"a": ' * 5000 + b"1" + b"}" * 5000,
    "big integer": b'{"id": "x", "attempt": ' + HUGE + b"}",
    "invalid UTF-8": b'{"id": "\xff"}',
    "not an object": b"[1, 2]",
    "wrong types": b'{"id": 1, "outcome": [], "reason": {}, "locks": 3, "attempt": "x"}',
}


def _config(content: bytes, tmp_path: Path) -> object:
    path = tmp_path / "dispatcher.toml"
    path.write_bytes(content)
    return load_settings({}, path)


TOML_PARSERS: dict[str, Callable[[bytes, Path], object]] = {
    "action": lambda b, _: parse_action(b, "vault/actions/abc-1.toml"),
    "formula": lambda b, _: parse_formula(b, "vault/formulas/abc.toml"),
    "policy": lambda b, _: parse_policy(b),
    "policy test": lambda b, _: parse_case(b, "vault/policy-tests/a.toml"),
    "config": _config,
}


@pytest.mark.parametrize("parser", sorted(TOML_PARSERS))
@pytest.mark.parametrize("case", sorted(HOSTILE_TOML))
def test_hostile_toml_gives_a_clear_error_from_every_parser(
    parser: str, case: str, tmp_path: Path
) -> None:
    with pytest.raises(OpsvaultError) as caught:
        TOML_PARSERS[parser](HOSTILE_TOML[case], tmp_path)
    message = str(caught.value)
    assert any(
        why in message
        for why in (TOO_DEEP, TOO_LONG_NUMBER, "outside the 64-bit range")
    ), message
    assert len(message) < 2000


def test_the_errors_name_file_field_and_fix() -> None:
    with pytest.raises(InvalidFileError) as deep:
        # 40 levels: tomllib parses it, the bound refuses it and says where.
        parse_action(
            action_with(b"{a=" * 40 + b"1" + b"}" * 40), "vault/actions/abc-1.toml"
        )
    (problem,) = deep.value.problems
    assert problem.path.startswith("$.params.message.a.a")
    assert "flatten" in problem.message
    with pytest.raises(InvalidFileError) as huge:
        parse_action(HOSTILE_TOML["big integer"], "vault/actions/abc-1.toml")
    assert str(huge.value).startswith("vault/actions/abc-1.toml: $: a number has")
    with pytest.raises(InvalidFileError) as wide:
        parse_action(HOSTILE_TOML["64-bit overflow"], "vault/actions/abc-1.toml")
    assert [p.path for p in wide.value.problems] == ["$.params.message"]


@pytest.mark.parametrize(
    "pattern",
    ["(" * 1000 + ")" * 1000, "a{99999999999}", "[[a]", "a{" + "1" * 4400 + "}"],
    ids=["deep-groups", "huge-repeat", "future-warning", "repeat-past-int-limit"],
)
def test_a_formula_pattern_python_cannot_use_is_a_clear_error(pattern: str) -> None:
    formula = (data_dir("formulas") / "noop.toml").read_text()
    formula = formula.replace(
        'pattern = "^[A-Za-z0-9 .,:;_-]{0,200}$"', f"pattern = {json.dumps(pattern)}"
    )
    assert json.dumps(pattern) in formula
    with pytest.raises(InvalidFileError) as caught:
        parse_formula(formula, "vault/formulas/noop.toml")
    assert [p.path for p in caught.value.problems] == ["$.params.message.pattern"]


def test_durations_past_ten_years_are_clear_errors_not_crashes() -> None:
    # Found by benchmarks/fuzz.py: the schema let these through, then parsing raised ValueError.
    formula = (data_dir("formulas") / "noop.toml").read_text()
    with pytest.raises(InvalidFileError) as caught:
        parse_formula(
            formula.replace('timeout = "30s"', 'timeout = "999999999d"'),
            "vault/formulas/noop.toml",
        )
    assert [p.path for p in caught.value.problems] == ["$.timeout"]
    policy = (data_dir("ops-template") / "vault" / "policy.toml").read_text()
    assert 'deadline = "7d"' in policy
    with pytest.raises(InvalidFileError) as caught:
        parse_policy(policy.replace('deadline = "7d"', 'deadline = "99999999d"', 1))
    assert [p.path for p in caught.value.problems] == ["$.tiers.high.deadline"]


@pytest.mark.parametrize("case", sorted(HOSTILE_JSON))
def test_hostile_records_read_back_never_raise_anything_else(case: str) -> None:
    with pytest.raises(InvalidFileError):
        parse_record(HOSTILE_JSON[case], "vault/fired/2026/11/x.result.json")
    with pytest.raises(InvalidFileError):
        parse_claim(HOSTILE_JSON[case], "vault/running/x.claim.json")
    assert read_claim(HOSTILE_JSON[case]) is None


def test_a_claim_with_a_naive_deadline_counts_as_unreadable() -> None:
    assert read_claim(b'{"deadline": "2026-11-21T12:00:00"}') is None
    good = b'{"deadline": "2026-11-21T12:00:00Z", "locks": ["a"], "attempt": 2}'
    claim = read_claim(good)
    assert claim is not None and (claim.attempt, claim.locks) == (2, ("a",))


@pytest.mark.parametrize(
    "field, value",
    [
        ("pr", "12"),
        ("attempt", True),
        ("idempotent", 1),
        ("locks", ["a", 1]),
        ("reasons", "low"),
        ("surprise", 1),
    ],
)
def test_a_claim_field_of_the_wrong_type_names_the_field(
    field: str, value: object
) -> None:
    raw = json.dumps({"deadline": "2026-11-21T12:00:00Z", field: value}).encode()
    with pytest.raises(InvalidFileError) as caught:
        parse_claim(raw, "vault/running/x.claim.json")
    assert "vault/running/x.claim.json" in str(caught.value)
    assert field in caught.value.problems[0].path


@pytest.mark.parametrize(
    "content", [b"\xff\xfe", b"x" * (1024 * 1024 + 1)], ids=["not-utf8", "too-large"]
)
def test_a_hostile_plan_gives_a_clear_error(content: bytes) -> None:
    with pytest.raises(InvalidFileError) as caught:
        decode_plan(content, "prerequisites.md")
    assert str(caught.value).startswith("prerequisites.md: $: ")


# -- the CLI: exit 1 (78 for policy, which is configuration), never 3 ----------------


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    create_ops_repo(tmp_path / "ops", when=0)
    return tmp_path / "ops"


def vault(*args: str) -> Any:
    """Run the CLI; a Python exception escaping it (exit 3 for real) fails the test."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        repr(result.exception),
    )
    return result


@pytest.mark.parametrize("case", ["nested arrays", "big integer"])
def test_cli_commands_report_hostile_files_without_a_traceback(
    ops: Path, case: str
) -> None:
    hostile = HOSTILE_TOML[case]
    action = ops / "vault" / "actions" / "abc-1.toml"
    action.write_bytes(hostile)
    for args in (["validate", str(action)], ["classify", str(action)]):
        result = vault(*args, "--ops", str(ops))
        assert result.exit_code == 1, (args, result.output)
        assert "abc-1.toml" in result.output
        assert "Traceback" not in result.output
    action.unlink()

    formula = ops / "vault" / "formulas" / "evil.toml"
    formula.write_bytes(hostile)
    result = vault("formulas", "--ops", str(ops))
    assert result.exit_code in (0, 1), result.output  # the invalid formula is reported
    result = vault("validate", str(formula), "--ops", str(ops))
    assert result.exit_code == 1, result.output
    formula.unlink()

    (ops / "vault" / "policy.toml").write_bytes(hostile)
    for args in (["policy", "check"], ["request", "noop", "--context", "x"]):
        result = vault(*args, "--ops", str(ops))
        # `policy check` reports (1); the others stop on a PolicyError (78).
        assert result.exit_code in (1, 78), (args, result.output)
        assert "vault/policy.toml" in result.output
        assert "Traceback" not in result.output


# -- a real tick: the bad PRs are refused, the others proceed ----------------------


@pytest.fixture
def forgejo(tmp_path: Path) -> Iterator[Harness]:
    harness = make_harness(tmp_path)
    try:
        yield harness
    finally:
        harness.close()


def test_a_tick_refuses_hostile_proposals_and_records_the_others(
    forgejo: Harness,
) -> None:
    deep = forgejo.propose("deep-1", HOSTILE_TOML["nested arrays"].decode())
    huge = forgejo.propose("huge-1", HOSTILE_TOML["big integer"].decode())
    good = forgejo.propose("good-1", NOOP.format(msg="hi"))
    report = forgejo.tick()
    assert forgejo.pull(good).merged
    assert not forgejo.pull(deep).merged and not forgejo.pull(huge).merged
    forgejo.tick(at=timedelta(minutes=1))
    fired = forgejo.main_files("vault/fired")
    assert any(p.endswith("good-1.result.json") for p in fired), fired
    for number, why in ((deep, "nest deeper"), (huge, "too many digits")):
        assert "vault/tier/refused" in forgejo.pull(number).labels
        comments = forgejo.client("alice").fetch_comments(number)
        assert any(why in c.body for c in comments), [c.body for c in comments]
    assert report.ok


def _local_env(ops: Path, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "secrets").mkdir(exist_ok=True)
    return {
        "OPSVAULT_FORGE_PATH": str(ops),
        "OPSVAULT_FORGE_OPERATOR": "alice",
        "OPSVAULT_SECRETS_DIR": str(tmp_path / "secrets"),
        "OPSVAULT_STATE_DIR": str(tmp_path / "state"),
    }


def _branch(
    ops: Path,
    name: str,
    blob_for: Callable[[pygit2.Repository], pygit2.Oid],
    paths: list[str],
) -> None:
    raw = pygit2.Repository(str(ops))
    main = raw.references["refs/heads/main"].peel(pygit2.Commit)
    index = pygit2.Index()
    index.read_tree(main.tree)
    blob = blob_for(raw)
    for path in paths:
        index.add(pygit2.IndexEntry(path, blob, pygit2.enums.FileMode.BLOB))
    sig = pygit2.Signature("dev-agent", "dev-agent@example.invalid", 0, 0)
    head = raw.create_commit(
        None, sig, sig, "propose", index.write_tree(raw), [main.id]
    )
    raw.references.create(f"refs/heads/vault/{name}", head)


def test_a_local_tick_refuses_hostile_proposals_and_merges_the_others(
    ops: Path, tmp_path: Path
) -> None:
    for name, content in (
        ("deep-1", HOSTILE_TOML["nested arrays"]),
        ("huge-1", HOSTILE_TOML["big integer"]),
        ("good-1", NOOP.format(msg="hi").encode()),
    ):
        _branch(
            ops,
            name,
            lambda raw, c=content: raw.create_blob(c),  # type: ignore[misc]
            [f"vault/actions/{name}.toml"],
        )
    env = _local_env(ops, tmp_path)
    app = build_app(load_settings(env, None), env)
    forge = app.forge
    report = tick(app, T0)
    assert report.ok, report.errors
    on_main = subprocess.run(
        ["git", "-C", str(ops), "ls-tree", "-r", "--name-only", "main", "vault"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "good-1" in on_main
    assert "deep-1" not in on_main and "huge-1" not in on_main
    comments = [
        c.body
        for pr in forge.fetch_pull_requests(ListState.ALL)
        for c in forge.fetch_comments(pr.number)
    ]
    assert any("nest deeper" in c for c in comments)
    assert any("too many digits" in c for c in comments)


# -- eight paths, one 128 MiB blob of zeros: never read -----------------------------

MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    from opsvault.app import build_app
    from opsvault.config import load_settings
    from opsvault.dispatcher.tick import tick
    from tests.dispatcher.harness import T0
    env = json.loads(sys.argv[1])
    report = tick(build_app(load_settings(env, None), env), T0)
    print(json.dumps({
        "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "decisions": [[d.subject, d.event, d.detail] for d in report.decisions],
    }))
    """
)


def _measured_tick(ops: Path, tmp_path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(_local_env(ops, tmp_path))],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_a_shared_blob_of_128_mib_of_zeros_is_never_read(
    tmp_path: Path,
) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    create_ops_repo(small / "ops", when=0)
    create_ops_repo(big / "ops", when=0)
    paths = [f"vault/actions/zero-{i}.toml" for i in range(8)]
    zeros = tmp_path / "zeros"
    with zeros.open("wb") as fh:
        fh.truncate(128 * 1024 * 1024)  # sparse: the test itself stays small too
    _branch(small / "ops", "zeros", lambda raw: raw.create_blob(b"\0" * 1024), paths)
    _branch(
        big / "ops", "zeros", lambda raw: raw.create_blob_fromdisk(str(zeros)), paths
    )

    baseline = _measured_tick(small / "ops", small)
    attacked = _measured_tick(big / "ops", big)
    grown_mib = (attacked["peak_kib"] - baseline["peak_kib"]) / 1024
    assert grown_mib < 32, (baseline["peak_kib"], attacked["peak_kib"])
    assert attacked["decisions"] == [["pr#1", "classified", "high (refused)"]]
    forge = LocalForge(Pygit2OpsRepo.open(big / "ops"), "alice")
    (comment,) = [c.body for c in forge.fetch_comments(1) if "opsvault:tier" in c.body]
    assert "134217728 bytes, over the limit of 65536" in comment


@pytest.mark.parametrize("case", ["nested arrays", "big integer"])
def test_vault_approve_refuses_a_hostile_proposal_with_a_clear_error(
    ops: Path, case: str
) -> None:
    _branch(
        ops,
        "bad-1",
        lambda raw: raw.create_blob(HOSTILE_TOML[case]),
        ["vault/actions/bad-1.toml"],
    )
    result = vault("approve", "bad-1", "--as", "alice", "--ops", str(ops))
    assert result.exit_code == 1, result.output
    assert "vault/actions/bad-1.toml" in result.output
    assert "nest deeper" in result.output or "too many digits" in result.output
    assert "Traceback" not in result.output


def test_read_file_refuses_from_the_header_and_a_large_file_still_exists(
    ops: Path,
) -> None:
    from opsvault.errors import FileTooLargeError
    from opsvault.snapshot import CommitSnapshot, has_file

    _branch(
        ops,
        "big",
        lambda raw: raw.create_blob(b"x" * (2 * 1024 * 1024)),
        ["vault/HALT"],
    )
    repo = Pygit2OpsRepo.open(ops)
    head = repo.resolve("vault/big")
    with pytest.raises(FileTooLargeError) as caught:
        repo.read_file(head, "vault/HALT")
    assert (caught.value.size, caught.value.limit) == (2 * 1024 * 1024, 1024 * 1024)
    assert repo.read_file(head, "vault/HALT", max_bytes=4 * 1024 * 1024) is not None
    assert has_file(CommitSnapshot(repo, head), "vault/HALT")  # a huge HALT still halts
