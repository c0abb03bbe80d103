"""The tier2 slice of ``assay run --spec``: planning (walkers from markov's share, none
without a spec, "not judged" with a reason), the ``tier_2`` block from merged counters, the
I-API-* invariants, and two real runs on the refapp: a defect fails the right invariant
with evidence, a shrunk reproducer that replays; the correct refapp passes with Tier 2
judged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors import slices
from coordinator import invariants, tier2_slice
from coordinator.planning import plan_walkers
from refapp.launch import start_refapp
from replay import tier2_repro
from tests.assay_cli import assay, invariant_status, only_results

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "refapp" / "openapi.yaml"
TIER1 = ["markov", "adv", "h2c", "ws", "sse"]
NO_CHAIN = """openapi: 3.0.0
info: {title: t, version: "1"}
paths:
  /healthz:
    get:
      operationId: healthz
      responses: {"200": {description: ok}}
"""


def _plan(concurrency: int, procs: int = 2):
    return plan_walkers(concurrency, procs, TIER1, {n: slices.SLICES[n][1] for n in TIER1})


def test_no_spec_plans_exactly_as_before_and_says_why() -> None:
    before = _plan(32)
    after, settings, reason = tier2_slice.plan(before, None, None)
    assert after is before and settings is None
    assert reason is not None and "no --spec" in reason


def test_spec_takes_walkers_from_markov_only() -> None:
    before = _plan(32)
    after, settings, reason = tier2_slice.plan(before, SPEC.read_text(), str(SPEC))
    assert reason is None and settings is not None
    assert after.total == before.total
    assert after.per_slice["tier2"] == 3 and after.per_slice["markov"] == \
        before.per_slice["markov"] - 3
    assert {n: c for n, c in after.per_slice.items() if n not in ("markov", "tier2")} == \
        {n: c for n, c in before.per_slice.items() if n != "markov"}
    planned = sorted(w for ws in after.per_actor.values() for w, s in ws if s == "tier2")
    assert planned == settings["walkers"]
    assert {a for a, ws in after.per_actor.items() for _, s in ws if s == "tier2"} == {0, 1}


def test_small_run_adds_a_walker_and_a_chainless_spec_is_not_judged() -> None:
    before = _plan(5, procs=1)  # one markov walker: none to spare
    after, settings, _ = tier2_slice.plan(before, SPEC.read_text(), str(SPEC))
    assert after.total == before.total + 1 and after.per_slice["markov"] == 1
    assert settings is not None and after.per_actor[0][-1] == (5, "tier2")
    same, none, reason = tier2_slice.plan(before, NO_CHAIN, "plain.yaml")
    assert same is before and none is None
    assert reason is not None and "no producer/consumer chain" in reason


def test_results_block_merges_counters_and_buckets() -> None:
    counters = {"tier2.sequences": 40, "tier2.requests": 150, "tier2.cov.createItem.201": 30,
                "tier2.cov.createItem.422": 4, "tier2.cov.deleteItem.500": 2,
                "tier2.finding.I-API-5XX": 2, "tier2.bucket.I-API-5XX:deleteItem:5xx": 2}
    example = {"invariant": "I-API-5XX", "sequence": [{"op": "deleteItem"}]}
    examples = {"tier2.bucket.I-API-5XX:deleteItem:5xx": example, "markov.x": {}}
    settings = {"spec_source": "s.yaml", "walkers": [7], "chains": 3,
                "operations": ["createItem", "deleteItem", "readItem"]}
    block = tier2_slice.results_block(counters, examples, settings, None)
    assert block["judged"] and block["sequences"] == 40 and block["requests"] == 150
    assert block["coverage"]["statuses"]["createItem"] == {"201": 30, "422": 4}
    assert block["coverage"]["operations_2xx"] == 1 and block["coverage"]["status_pairs"] == 3
    assert block["coverage"]["operations_reached"] == 2
    assert block["coverage"]["never_2xx"] == ["deleteItem", "readItem"]
    assert block["findings_by_invariant"] == {"I-API-5XX": 2}
    [finding] = block["findings"]
    assert finding["count"] == 2 and finding["sequence"] == [{"op": "deleteItem"}]
    assert finding["confirmed"] is False and "not replayed" in finding["confirm"]
    assert tier2_slice.tier1_examples(examples) == {"markov.x": {}}
    assert tier2_slice.results_block({}, {}, None, "not judged: x") == \
        {"judged": False, "reason": "not judged: x"}


def test_api_invariants_judged_from_counters() -> None:
    high = {i.id for i in invariants.REGISTRY if i.id.startswith("I-API")
            and i.severity is invariants.HIGH}
    assert {"I-API-5XX", "I-API-DOUBLE-DELETE", "I-API-USE-AFTER-DELETE"} <= high
    assert "tier2.finding.I-API-DOUBLE-DELETE" in invariants.HIGH_COUNTERS
    grouped = invariants.judge_all({"tier2.sequences": 5, "tier2.finding.I-API-SCHEMA": 1},
                                   {})
    failed = {e["id"] for e in grouped["failed"]}
    assert "I-API-SCHEMA" in failed and "I-API-5XX" in {e["id"] for e in grouped["passed"]}
    grouped = invariants.judge_all({}, {"tier2": tier2_slice.NO_SPEC})
    api = [e for e in grouped["not_judged"] if e["id"].startswith("I-API")]
    assert len(api) == 9 and all(e["reason"] == tier2_slice.NO_SPEC for e in api)


def test_only_findings_confirmed_alone_after_the_run_fail_an_invariant() -> None:
    counters = {"tier2.sequences": 40, "tier2.finding.I-API-5XX": 3,
                "tier2.bucket.I-API-5XX:createItem:5xx": 2,
                "tier2.bucket.I-API-5XX:listItems:5xx": 1,
                "tier2.finding.I-API-DOUBLE-DELETE": 4,
                "tier2.bucket.I-API-DOUBLE-DELETE:deleteItem:5xx": 4}
    checked = {"I-API-5XX:createItem:5xx": {"confirmed": False},  # a 503 under the load
               "I-API-DOUBLE-DELETE:deleteItem:5xx": {"confirmed": True}}
    judged = tier2_slice.confirmed_counters(counters, checked)
    # listItems was never replayed (the step ran out of time): not confirmed either.
    assert judged["tier2.finding.I-API-5XX"] == 0
    assert judged["tier2.unconfirmed.I-API-5XX"] == 3
    assert judged["tier2.finding.I-API-DOUBLE-DELETE"] == 4
    assert counters["tier2.finding.I-API-5XX"] == 3  # the raw tallies are left alone
    grouped = invariants.judge_all(judged, {})
    assert {e["id"] for e in grouped["failed"]} == {"I-API-DOUBLE-DELETE"}
    assert "I-API-5XX" in {e["id"] for e in grouped["passed"]}


@pytest.mark.integration
def test_run_with_spec_finds_double_delete_and_passes_on_the_correct_refapp(
        tmp_path: Path) -> None:
    bad = assay("run", "--spec", str(SPEC), "--refapp-defect", "api-double-delete-500",
                "--duration", "5s", "--procs", "1", "--seed", "3",
                "--results", str(tmp_path / "bad"), timeout=90)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    document = only_results(tmp_path / "bad")
    assert invariant_status(document, "I-API-DOUBLE-DELETE") == "failed"
    block = document["tier_2"]
    assert block["judged"] and block["sequences"] > 20
    assert {f["invariant"] for f in block["findings"]} == {"I-API-DOUBLE-DELETE"}
    [finding] = block["findings"]
    assert finding["count"] >= 1 and finding["status"] == 500
    assert finding["confirmed"] and "shown again alone" in finding["confirm"]
    assert [e["status"] for e in finding["exchanges"]][-2:] == [204, 500]
    assert [s["op"] for s in finding["minimal_sequence"]] == \
        ["login", "createItem", "deleteItem", "deleteItem"]
    [incident] = document["incidents"]
    assert incident["invariant"] == "I-API-DOUBLE-DELETE"
    assert incident["shrink"]["status"] == "not_shrunk" and "Tier 2" in \
        incident["shrink"]["reason"]
    repro = Path(finding["repro"])
    parsed = tier2_repro.parse(repro.read_text(), str(repro))
    assert parsed["bucket"] == "I-API-DOUBLE-DELETE:deleteItem:5xx"
    with start_refapp(defects=["api-double-delete-500"]) as target:
        assert assay("replay", str(repro), "--target", target.url).returncode == 1

    good = assay("run", "--markov", str(ROOT / "refapp" / "markov.yaml"), "--spec", str(SPEC),
                 "--duration", "4s", "--procs", "1", "--results", str(tmp_path / "good"),
                 timeout=90)
    assert good.returncode == 0, good.stdout + good.stderr
    document = only_results(tmp_path / "good")
    block = document["tier_2"]
    assert block["judged"] and block["findings"] == [] and block["sequences"] > 20
    cov = block["coverage"]
    assert cov["operations"] == cov["operations_2xx"] == 7 and cov["never_2xx"] == []
    assert {"201", "422"} <= set(block["coverage"]["statuses"]["createItem"])
    assert invariant_status(document, "I-API-5XX") == "passed"
    assert document["tier_1"]["slices"]["tier2"]["walkers"] == 3
    assert "tier2.bucket" not in json.dumps(document["tier_1"]["examples"])


def test_post_run_confirms_every_bucket_first_and_a_deadline_keeps_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A shrink that runs into the caller's deadline must not take the confirmations of
    other buckets with it (they are the verdict; the shrink is only a convenience)."""
    import trio

    from coordinator import tier2_post_run as post

    class FakeRunner:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def close(self) -> None:
            pass

    class FakeGraph:
        setup = None

    class FakeApi:
        spec = type("S", (), {"base_path": ""})()

        def by_id(self) -> dict[str, object]:
            return {}

    async def shows(runner: object, steps: object, bucket: str) -> bool:
        return bucket.endswith("5xx")

    async def never_done(*args: object) -> None:
        await trio.sleep_forever()

    monkeypatch.setattr(post, "SequenceRunner", FakeRunner)
    monkeypatch.setattr(post, "load_operations", lambda text, source: FakeApi())
    monkeypatch.setattr(post, "infer", lambda api: FakeGraph())
    monkeypatch.setattr(post, "apply", lambda graph, overrides: graph)
    monkeypatch.setattr(post, "still_shows", shows)
    monkeypatch.setattr(post, "minimize", never_done)
    examples = {f"tier2.bucket.{b}": {"sequence": []}
                for b in ("I-API-5XX:a:5xx", "I-API-5XX:b:5xx", "I-API-LEAK:c:leak")}
    out: dict[str, dict] = {}

    async def main() -> None:
        with trio.move_on_after(0.5):
            await post.shrink_buckets("http://127.0.0.1:9/", {"spec_text": "",
                                      "spec_source": "x"}, examples, tmp_path, 1, {},
                                      out=out)

    trio.run(main)
    assert out["I-API-5XX:a:5xx"]["confirmed"] and out["I-API-5XX:b:5xx"]["confirmed"]
    assert out["I-API-LEAK:c:leak"]["confirmed"] is False
    judged = tier2_slice.confirmed_counters(
        {"tier2.finding.I-API-5XX": 2, "tier2.bucket.I-API-5XX:a:5xx": 1,
         "tier2.bucket.I-API-5XX:b:5xx": 1}, out)
    assert judged["tier2.finding.I-API-5XX"] == 2
