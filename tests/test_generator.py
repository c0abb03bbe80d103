"""Seed expansion is deterministic, seed-sensitive, covers every slice, and is pinned."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpus import workload
from corpus.generator import GENERATOR_VERSION, SeedError, expand, parse_seed
from corpus.plan import DEFAULT_PROFILE, Profile, parse_label
from corpus.rng import SeedRng
from protocols import adversarial_cases, websocket_cases
from protocols.program import Action, Program

ROOT = Path(__file__).resolve().parent.parent

#: Bumping GENERATOR_VERSION (a deliberate change of what seeds send) re-pins these.
PINNED = {
    1: {
        0: "0c408ccf8a57ece6b43545db37ca5a19b9744e0a5162333f8c53956714ae0363",
        1: "3365988b890a1e039e2687e56d618bf961994fb654e47d5eed49cb26c820750f",
        42: "f80f57c3991a565bb822d12d74b147074d7357ab5e22cfff4a804163d4c6e9ae",
        2**64 - 1: "3333e2c60ff3cc4b1628c96e8ef3b7bf55d3e3d6f691a678bb6b788725a20ed7",
    },
}
PINNED_GET_PROFILE_42 = "e3eb56c3a036f66d224245d2680d93ff6b7c37772231c1d9819df872ea44ae16"
SEEDS = [0, 1, 2, 3, 42, 1234567890123, 2**64 - 1]


def test_pinned_digests() -> None:
    pinned = PINNED[GENERATOR_VERSION]
    assert {seed: expand(seed).digest() for seed in pinned} == pinned, (
        "what these seeds send changed (the generator, or a catalogue builder it draws "
        "from): if deliberate, bump corpus.generator.GENERATOR_VERSION and pin the new "
        "digests under it")
    assert expand(42, Profile.for_target("/api", builtin=False)).digest() == \
        PINNED_GET_PROFILE_42


def test_same_seed_same_plan_in_another_process() -> None:
    """A separate interpreter, with a different hash seed, expands to the same digests."""
    code = ("import json, sys; from corpus.generator import expand; "
            "print(json.dumps([expand(s).digest() for s in json.loads(sys.argv[1])]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code, json.dumps(SEEDS)], capture_output=True,
                         text=True, env=env, check=True, timeout=60)
    assert json.loads(out.stdout) == [expand(s).digest() for s in SEEDS]


def test_expansion_is_repeatable_in_process() -> None:
    first, second = expand(99), expand(99)
    assert first.program.canonical() == second.program.canonical()
    assert first.schedule == second.schedule


def test_different_seeds_give_different_plans() -> None:
    digests = {expand(seed).digest() for seed in range(200)}
    assert len(digests) == 200
    programs = {expand(seed).program.digest() for seed in range(50)}
    assert len(programs) == 50


def test_profile_is_part_of_the_identity() -> None:
    default = expand(7)
    foreign = expand(7, Profile.for_target("/app", builtin=False))
    assert default.digest() != foreign.digest()
    sent = b"".join(s.data for s in foreign.program.steps)
    assert b"/login" not in sent and b"GET /app HTTP/1.1" in sent
    assert Profile.for_target("/", builtin=True) == DEFAULT_PROFILE


@pytest.mark.parametrize("seed", [0, 5, 21, 77, 2**63])
def test_every_plan_covers_all_slices_and_faults(seed: int) -> None:
    plan = expand(seed)
    kinds = [segment["kind"] for segment in plan.segments()]
    assert {"markov", "adv", "h2c", "ws", "sse"} <= set(kinds)
    assert kinds[-1] == "liveness"
    assert sum(k.startswith("fault.") for k in kinds) >= 3
    assert len(plan.schedule) >= 3
    for step in plan.program.steps:  # every step belongs to a segment
        assert parse_label(step.label) is not None


def test_bytes_are_target_independent() -> None:
    """The Host value is a placeholder the executor fills: ports never reach the digest."""
    plan = expand(3)
    sends = [s for s in plan.program.steps if s.action in (Action.SEND, Action.DRIP)]
    assert all(s.template for s in sends if b"{host}" in s.data)
    assert any(b"Host: {host}" in s.data for s in sends)


def test_fault_schedule_sides_and_frequencies() -> None:
    counts = collections.Counter(f.kind for seed in range(300) for f in expand(seed).schedule)
    for kind in ("rst", "half_close", "abort_body", "slow_read", "drip_write", "burst",
                 "pause", "fd_limit", "network"):
        assert counts[kind] > 0, kind
    sides = {f.kind: f.side for seed in range(100) for f in expand(seed).schedule}
    assert sides["pause"] == sides["fd_limit"] == "target"
    assert sides["network"] == "network" and sides["rst"] == "client"
    storms = [s for s in range(100) if any(
        f.kind == "abort_body" and f.detail["storm"] for f in expand(s).schedule)]
    assert storms  # some seeds abort more uploads than a 20-slot pool holds


def test_program_round_trips_through_json() -> None:
    plan = expand(11)
    again = Program.from_json(json.loads(json.dumps(plan.program.to_json())))
    assert again.digest() == plan.program.digest()


def test_pinned_catalogue_names_exist() -> None:
    assert set(workload.ADV_CASES) <= set(adversarial_cases.BY_NAME)
    assert set(workload.WS_CASES) <= set(websocket_cases.BY_NAME)


def test_parse_seed() -> None:
    assert parse_seed("0x10") == 16 and parse_seed(" 7 ") == 7 and parse_seed(2**64 - 1)
    for bad in ("-1", str(2**64), "seven", ""):
        with pytest.raises(SeedError):
            parse_seed(bad)


def test_rng_is_pinned_and_unbiased() -> None:
    rng = SeedRng("assay-test")
    assert [rng.u64() for _ in range(3)] == [
        388289246668907875, 14678227590146245681, 16928628558072621038]
    rng = SeedRng("spread")
    draws = collections.Counter(rng.below(3) for _ in range(3000))
    assert set(draws) == {0, 1, 2} and min(draws.values()) > 850
    assert sorted(SeedRng("x").shuffled(range(10))) == list(range(10))
    assert SeedRng("a").fork("b").u64() == SeedRng("a/b").u64()
