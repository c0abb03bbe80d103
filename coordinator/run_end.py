"""The end of a run: final tallies, checks that need the walkers gone, the judgement.

``collect_finals`` is the stopping phase (Stop published, every actor's final tally
awaited, bounded). Then ``coordinator.run`` calls ``post_run_checks`` (SSE subscriber
slots back to their baseline) and ``tier2_shrink`` (each Tier 2 bucket confirmed alone,
then shrunk), and at the very end ``judge_and_write``: the run's status and exit code
(error 3, failed 1, interrupted 130/143, harness error 3, passed 0), the results files,
the reports and the summary. These are the Coordinator's own steps, split out of
``coordinator.run`` by concept, so they use its internal fields (``_trip``, ``_move``,
``_write``).
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

import trio

from coordinator import invariants, remote_actors, results, run_document
from coordinator.reports import write_reports
from coordinator.run_state import Phase
from coordinator.sse_leak_check import leak_verdict
from protocols import wire
from protocols.outcome import Verdict

if TYPE_CHECKING:
    from coordinator.run import Coordinator

FINALS_TIMEOUT_S = 10.0
SSE_GRACE_S = 10.0
EXIT_INTERRUPTED = {signal.SIGINT: 130, signal.SIGTERM: 143}


def stats_source(coord: Coordinator) -> tuple[str, str | None, str | None, str | None]:
    """Where the target's SSE subscriber count is read (the baseline and the leak check)."""
    settings = coord.inputs.settings
    return (coord.inputs.target_url, settings.get("stats_url"), settings.get("stats_field"),
            settings.get("stats_metric"))


async def collect_finals(coord: Coordinator) -> None:
    """The stopping phase: publish Stop, then wait (bounded) for every actor's final tally."""
    if coord.phase is not Phase.STOPPING:
        coord._move(Phase.STOPPING)
    coord.run_ended = time.time()
    reason = "interrupted" if coord.interrupted else ("aborted" if coord.failure else "deadline")
    if coord.config.mode == "soak" and reason != "deadline":
        reason += f" {wire.RESUMABLE}"  # remote actors wait for the resume (exit 4)
    coord.control = wire.Stop(coord.run_id, reason)
    coord._publish()
    coord._check_all_final()
    with trio.move_on_after(FINALS_TIMEOUT_S):
        await coord._all_final.wait()
    remote_actors.judge_missing_finals(coord)
    missing = [a for a, r in coord.actors.items() if not r.final and r.exit is None]
    if missing:
        coord.log.warning("no final tally", actors=missing)


async def tier2_shrink(coord: Coordinator) -> None:
    """--spec: each Tier 2 bucket replayed alone on the live target to confirm it, then
    (unless --no-shrink) shrunk and written as a reproducer."""
    from coordinator.tier2_post_run import SHRINK_TOTAL_S, shrink_buckets

    settings = coord.inputs.settings.get("tier2")
    if not settings or coord.health.down_reason():
        return
    info = {"url": coord.inputs.target_url, "builtin": coord.inputs.builtin,
            "defects": sorted(coord.config.refapp_defects)}
    with trio.move_on_after(SHRINK_TOTAL_S + 15):
        try:
            # Filled in place: a deadline here keeps the buckets already confirmed.
            await shrink_buckets(
                coord.inputs.target_url, settings, coord.merger.examples(), coord.run_dir,
                coord.inputs.seed, info, coord.config.request_timeout_s,
                shrink=coord.incidents.settings.shrink, out=coord.tier2_shrunk)
        except Exception as exc:  # a harness bug here must not lose the run's results
            coord.log.error("tier2 shrink failed", error=f"{type(exc).__name__}: {exc}")
            # ... nor pass it: the findings it did not replay are unconfirmed, so the
            # run ends as a harness error (exit 3) rather than a pass.
            coord.coord_counters["harness.walker_errors"] = \
                coord.coord_counters.get("harness.walker_errors", 0) + 1
            coord.coord_examples.setdefault("harness.walker_errors", {
                "where": "tier2 post-run confirmation",
                "error": f"{type(exc).__name__}: {exc}"})


async def post_run_checks(coord: Coordinator) -> None:
    """Checks that need the walkers gone: SSE subscriber slots back to baseline."""
    if "sse" not in coord.inputs.walker_plan.per_slice:
        return
    down = coord.health.down_reason()
    if down is not None:  # its stats cannot be read; the death has its own verdict
        coord.post_run["sse_subscribers"] = {
            "verdict": Verdict.UNJUDGED.value, "baseline": coord.sse_baseline,
            "reason": f"not judged: the target is down ({down})"}
        return
    verdict, reason = await leak_verdict(*stats_source(coord), coord.sse_baseline,
                                         SSE_GRACE_S)
    coord.post_run["sse_subscribers"] = {"verdict": verdict.value, "reason": reason,
                                         "baseline": coord.sse_baseline}
    if verdict is Verdict.VIOLATION:
        coord.coord_counters["sse.leak"] = coord.coord_counters.get("sse.leak", 0) + 1
        detail = {"check": "subscriber count after the run", "reason": reason}
        coord.coord_examples.setdefault("sse.leak", detail)
        coord._trip("sse.leak", {"evidence": detail, "received_at": time.time(),
                                 "via": "post-run check"})


def judge_and_write(coord: Coordinator) -> int:
    coord._move(Phase.JUDGING)
    document = run_document.build(coord, final=True)
    counters = coord.counters()
    failed = invariants.run_failed(document["invariants"])
    harness_errors = counters.get("harness.walker_errors", 0)
    if coord.failure is not None:
        status, code, error = "error", 3, coord.failure
    elif failed or (coord.extension is not None and coord.extension.failed(document)):
        status, code, error = "failed", 1, None
    elif coord.interrupted is not None:
        status, code = "interrupted", EXIT_INTERRUPTED.get(coord.interrupted, 130)
        error = f"interrupted by {signal.Signals(coord.interrupted).name}"
    elif harness_errors:
        status, code = "error", 3
        error = f"{harness_errors} walker crash(es) inside assay (a harness bug; see " \
                "tier_1.examples['harness.walker_errors'])"
    else:
        status, code, error = "passed", 0, None
    if coord.fail_fast_tripped:
        document["notes"].append(f"stopped early by --fail-fast on {coord.fail_fast_tripped}")
    document.update(status=status, exit_code=code, error=error)
    coord._write(dict(document))
    write_reports(coord.run_dir)  # report.html + junit.xml; never raises
    if coord.extension is not None:
        coord.extension.write_summary(coord, document)
        if not coord.extension.quiet:
            print(coord.extension.render(document), flush=True)
    else:
        print(results.render_summary(document), flush=True)
    return code
