"""Property (I5): every parser returns a value or an OpsvaultError, for any bytes.

The CI-sized sibling of ``benchmarks/fuzz.py`` (which runs 100,000 inputs):
a few hundred inputs drawn from valid files, TOML/JSON tokens, deep nesting,
long integers and raw bytes, through every parser of untrusted files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsvault._resources import data_dir
from opsvault.config import load_settings
from opsvault.dispatcher.records import parse_claim, parse_record
from opsvault.errors import OpsvaultError
from opsvault.planner.evaluate import decode_plan
from opsvault.policy.cases import parse_case
from opsvault.policy.classify import classify_new_action
from opsvault.policy.parse import parse_policy
from opsvault.snapshot import DirSnapshot, load_base_state
from opsvault.vault.formula import parse_formula

TEMPLATE = data_dir("ops-template")
SEEDS = [
    (TEMPLATE / "vault" / "policy.toml").read_bytes(),
    (data_dir("formulas") / "http-hook.toml").read_bytes(),
    b'formula = "noop"\ncontext = "x"\nparams = { message = "hi" }\n',
    b'{"id": "abc-1", "outcome": "succeeded", "reason": "fired", "attempt": 1}',
    b"# Prerequisite Tree\n## Objective: x\n- [ ] item (#1)\nStatus: IN PROGRESS\n",
]
TOKENS = [b"[", b"]", b"{", b"}", b"=", b'"', b"\n", b".", b",", b"a", b"\xff", b"\x00"]

pieces = st.one_of(
    st.sampled_from(TOKENS),
    st.sampled_from(SEEDS),
    st.binary(max_size=16),
    st.integers(1, 800).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 800).map(lambda n: b"{a=" * n + b"1" + b"}" * n),
    st.integers(1, 800).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.integers(1, 5000).map(lambda n: b"k = " + b"7" * n + b"\n"),
)
documents = st.lists(pieces, max_size=12).map(b"".join)


@pytest.fixture(scope="module")
def targets(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Callable[[bytes], object]]:
    ops = tmp_path_factory.mktemp("ops")
    (ops / "vault").mkdir()
    (ops / "vault" / "policy.toml").write_bytes(SEEDS[0])
    base = load_base_state(DirSnapshot(ops))
    config = Path(ops / "dispatcher.toml")

    def settings_from(content: bytes) -> object:
        config.write_bytes(content)
        return load_settings({}, config)

    return {
        "action": lambda c: classify_new_action("vault/actions/abc-1.toml", c, base),
        "formula": lambda c: parse_formula(c, "vault/formulas/abc.toml"),
        "policy": parse_policy,
        "policy test": lambda c: parse_case(c, "vault/policy-tests/a.toml"),
        "prerequisites.md": lambda c: decode_plan(c, "prerequisites.md"),
        "config": settings_from,
        "result record": parse_record,
        "claim": parse_claim,
    }


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(content=documents)
def test_every_parser_is_total(
    targets: dict[str, Callable[[bytes], object]], content: bytes
) -> None:
    for parse in targets.values():
        # A clear error is an answer; anything else fails the test.
        with contextlib.suppress(OpsvaultError):
            parse(content)
