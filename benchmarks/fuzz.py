"""Fuzz every parser of proposer- and operator-written files (security invariant I5).

Generates inputs from the valid files shipped in the repo (action examples,
formulas, the template policy and its policy tests, prerequisites.md, the
dispatcher configs, a result record and a claim): byte and token mutations,
splices of two files, deep nesting (arrays, inline tables, dotted keys, JSON),
huge and out-of-range integers, invalid UTF-8 and plain random bytes. Every
input goes through every parser; a parser may return a value or raise an
OpsvaultError (a clear message), anything else is a crash. Prints per-parser
counts, crashes (0 expected) and throughput; the first crashing inputs are
written to --crash-dir.

Run: .venv/bin/python benchmarks/fuzz.py [--inputs 100000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from opsvault.config import load_settings  # noqa: E402
from opsvault.dispatcher.reasons import ReasonCode  # noqa: E402
from opsvault.dispatcher.records import (  # noqa: E402
    Outcome,
    ResultRecord,
    parse_claim,
    parse_record,
    render_record,
)
from opsvault.errors import OpsvaultError  # noqa: E402
from opsvault.planner.evaluate import decode_plan  # noqa: E402
from opsvault.planner.render import render_plan  # noqa: E402
from opsvault.policy.cases import parse_case, run_case  # noqa: E402
from opsvault.policy.classify import classify_new_action  # noqa: E402
from opsvault.policy.parse import parse_policy  # noqa: E402
from opsvault.snapshot import DirSnapshot, load_base_state  # noqa: E402
from opsvault.vault.formula import parse_formula  # noqa: E402

TOKENS = [
    b"[",
    b"]",
    b"{",
    b"}",
    b"=",
    b",",
    b".",
    b'"',
    b"'",
    b'"""',
    b"'''",
    b"\n",
    b"\r\n",
    b"#",
    b"\\",
    b"\\u0000",
    b"\\U0010FFFF",
    b"\\x",
    b"9" * 25,
    b"-0",
    b"0x_1",
    b"1e400",
    b"inf",
    b"nan",
    b"-inf",
    b"true",
    b"false",
    b"null",
    b"1979-05-27T07:32:00Z",
    b"1979-13-45T25:61:61+25:00",
    b"00:00:00",
    b"2026-11-21",
    b"[[a]]",
    b"[a.b]",
    b"params",
    b"formula",
    b"context",
    b"secrets",
    b"blast_radius",
    b"expires",
    b"[action_required]",
    b"description",
    b"tiers",
    b"merge",
    b"rules",
    b"when",
    b"{{placeholder}}",
    b"{{ params.x }}",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"- [ ] ",
    b"- [x] ",
    b"## Objective: ",
    b"Status: ",
    b"```",
    b"<!-- Last updated: 2026-04-15 -->",
    b"(#12)",
    b"blocked-on-vault (vault/pending/x.md)",
]


def seeds() -> list[bytes]:
    """Return valid files of every kind the parsers read."""
    found = [
        *(
            p.read_bytes()
            for p in sorted((ROOT / "examples" / "proposals").glob("*.toml"))
        ),
        *(p.read_bytes() for p in sorted((ROOT / "formulas").glob("*.toml"))),
        (ROOT / "ops-template" / "vault" / "policy.toml").read_bytes(),
        *(
            p.read_bytes()
            for p in sorted(
                (ROOT / "ops-template" / "vault" / "policy-tests").glob("*.toml")
            )
        ),
        (ROOT / "ops-template" / "prerequisites.md").read_bytes(),
        *(p.read_bytes() for p in sorted((ROOT / "examples").glob("dispatcher*.toml"))),
        render_record(
            ResultRecord(
                "abc-1",
                Outcome.SUCCEEDED,
                ReasonCode.OK,
                tier="low",
                reasons=("low: x",),
                pr=3,
            )
        ),
        json.dumps(
            {
                "claimed_by": "d1",
                "claimed_at": "2026-11-21T12:00:00Z",
                "deadline": "2026-11-21T12:30:00Z",
                "locks": ["site:a"],
                "attempt": 1,
                "idempotent": True,
                "formula": "noop",
                "policy_commit": "0" * 40,
                "formula_sha256": "f" * 64,
            }
        ).encode(),
    ]
    return found


def _nest(rng: random.Random) -> bytes:
    depth = rng.choice(
        [rng.randint(1, 40), rng.randint(40, 400), rng.randint(400, 3000)]
    )
    kind = rng.randrange(5)
    if kind == 0:
        return b"[" * depth + b"1" + b"]" * depth
    if kind == 1:
        return b"{a=" * depth + b"1" + b"}" * depth
    if kind == 2:
        return b"a" + b".a" * depth + b" = 1"
    if kind == 3:
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b"[" * depth  # unbalanced


def _number(rng: random.Random) -> bytes:
    digits = rng.choice([19, 20, 40, 4299, 4300, 4301, 4400, rng.randint(1, 9000)])
    sign = rng.choice([b"", b"-", b"+"])
    return sign + b"1" + b"0" * (digits - 1)


def mutate(rng: random.Random, pool: list[bytes]) -> bytes:
    """Return one generated input: a mutation of a seed, or something built from nothing."""
    roll = rng.random()
    if roll < 0.05:
        return rng.randbytes(rng.randint(0, 512))
    data = bytearray(rng.choice(pool))
    for _ in range(rng.choice([1, 1, 2, 3, 8])):
        how = rng.randrange(9)
        at = rng.randint(0, len(data))
        if how == 0 and data:  # flip a byte
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif how == 1:
            data[at:at] = rng.choice(TOKENS)
        elif how == 2 and data:
            end = min(len(data), at + rng.randint(1, 64))
            del data[at:end]
        elif how == 3:
            data[at:at] = _nest(rng)
        elif how == 4:
            data[at:at] = _number(rng)
        elif how == 5:
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        elif how == 6:  # splice in part of another seed
            other = rng.choice(pool)
            start = rng.randint(0, len(other))
            data[at:at] = other[start : start + rng.randint(1, 200)]
        elif how == 7 and data:  # duplicate a range
            end = min(len(data), at + rng.randint(1, 200))
            data[at:at] = data[at:end]
        elif how == 8:  # a value position: key = <nested or huge>
            data[at:at] = (
                b"\nk = " + (_nest(rng) if rng.random() < 0.5 else _number(rng)) + b"\n"
            )
    return bytes(data)


@dataclass
class Tally:
    calls: int = 0
    values: int = 0
    errors: int = 0
    crashes: int = 0
    seconds: float = 0.0
    slowest: float = 0.0
    examples: list[tuple[bytes, str]] = field(default_factory=list)


def parsers(tmp: Path) -> dict[str, Callable[[bytes], object]]:
    ops = tmp / "ops"
    (ops / "vault").mkdir(parents=True)
    (ops / "vault" / "policy.toml").write_bytes(
        (ROOT / "ops-template" / "vault" / "policy.toml").read_bytes()
    )
    base = load_base_state(DirSnapshot(ops))
    config = tmp / "dispatcher.toml"

    def action(content: bytes) -> object:
        # Parse, then assess against formulas and policy.
        return classify_new_action("vault/actions/fuzz-1.toml", content, base)

    def case(content: bytes) -> object:
        return run_case(parse_case(content, "vault/policy-tests/fuzz.toml"), base)

    def plan(content: bytes) -> object:
        return render_plan(decode_plan(content, "prerequisites.md"))

    def settings(content: bytes) -> object:
        config.write_bytes(content)
        return load_settings({}, config)

    def formula(content: bytes) -> object:
        # Named after its own name, so it can be valid.
        named = re.search(rb'^name = "([a-z0-9-]{1,63})"', content, re.MULTILINE)
        stem = named[1].decode() if named else "fuzz"
        return parse_formula(content, f"vault/formulas/{stem}.toml")

    return {
        "action": action,
        "formula": formula,
        "policy": lambda c: parse_policy(c),
        "policy test": case,
        "prerequisites.md": plan,
        "config": settings,
        "result record": lambda c: parse_record(c, "fuzz.result.json"),
        # one parse for the dispatcher and `vault status` (dispatcher/records.py)
        "claim": lambda c: parse_claim(c, "fuzz.claim.json"),
    }


def run(inputs: int, seed: int, crash_dir: Path) -> int:
    warnings.simplefilter("error")  # as under pytest: a warning is a crash too
    rng = random.Random(seed)
    pool = seeds()
    with tempfile.TemporaryDirectory() as tmp_name:
        targets = parsers(Path(tmp_name))
        tallies = {name: Tally() for name in targets}
        generated_bytes = 0
        started = time.perf_counter()
        for _ in range(inputs):
            content = mutate(rng, pool)
            generated_bytes += len(content)
            for name, parse in targets.items():
                tally = tallies[name]
                t0 = time.perf_counter()
                try:
                    parse(content)
                    tally.values += 1
                except OpsvaultError:
                    tally.errors += 1
                except Exception:  # anything else is a crash: exactly what we look for
                    tally.crashes += 1
                    if len(tally.examples) < 5:
                        tally.examples.append((content, traceback.format_exc(limit=4)))
                spent = time.perf_counter() - t0
                tally.calls += 1
                tally.seconds += spent
                tally.slowest = max(tally.slowest, spent)
        wall = time.perf_counter() - started
    crashes = sum(t.crashes for t in tallies.values())
    print(
        f"{inputs} generated inputs (seed {seed}, {generated_bytes / 1e6:.1f} MB) through {len(tallies)} parsers"
    )
    print(
        f"{'parser':18} {'calls':>8} {'values':>8} {'errors':>8} {'crashes':>8} {'calls/s':>9} {'slowest':>9}"
    )
    for name, t in tallies.items():
        rate = t.calls / t.seconds if t.seconds else 0.0
        print(
            f"{name:18} {t.calls:8} {t.values:8} {t.errors:8} {t.crashes:8} {rate:9.0f} {t.slowest * 1000:7.1f}ms"
        )
    total_calls = sum(t.calls for t in tallies.values())
    print(
        f"total: {total_calls} parser calls in {wall:.1f} s ({inputs / wall:.0f} inputs/s, {total_calls / wall:.0f} calls/s); crashes: {crashes}"
    )
    if crashes:
        crash_dir.mkdir(parents=True, exist_ok=True)
        for name, t in tallies.items():
            for i, (content, trace) in enumerate(t.examples):
                stem = f"{name.replace(' ', '-')}-{i}"
                (crash_dir / f"{stem}.input").write_bytes(content)
                (crash_dir / f"{stem}.trace").write_text(trace)
                print(f"--- {name} crash {i} ({crash_dir / stem}.input)\n{trace}")
    return 1 if crashes else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--crash-dir", type=Path, default=Path("fuzz-crashes"))
    args = parser.parse_args()
    return run(args.inputs, args.seed, args.crash_dir)


if __name__ == "__main__":
    sys.exit(main())
