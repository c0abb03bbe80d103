"""What a long run adds to the coordinator: actor restarts, the target watch and checkpoints.

How this works: ``coordinator.run`` calls in here at a few fixed points and nowhere else -
a reaped actor (``restart_actor``), every results write (``on_results_write``), every
results document (``sections``). ``coordinator.checkpoint`` holds the checkpoint format and the
resume; ``coordinator.restarts`` and ``coordinator.resources`` the policies. Kept out of
run.py so that the run lifecycle stays readable there and each policy is testable alone.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from coordinator import checkpoint, results
from coordinator.restarts import begin_incarnation


def restart_actor(coord: Any, process: Any) -> bool:
    """With ``--restart-actors``, bring a dead actor back as its next incarnation.

    Same actor id, hence the same walkers; the new process gets the Plan re-published on its
    Hello and the live Start with it, and starts at once (``start_at`` is in the past).
    Returns True when the exit was handled here (restarted, or a restart storm that aborted
    the run); False leaves the caller's rule in force (an unexpected death is exit 3).
    """
    if (not coord.config.restart_actors or coord.phase.value != "running"
            or process.expected_exit):
        return False
    now = time.time()
    if coord.deadline is not None and now >= coord.deadline - 1.0:
        return False  # actors leave by themselves at the deadline: the normal end
    record = coord.actors[process.actor_id]
    why = (record.exit or "exited") + (f": {record.error}" if record.error else "")
    if not coord.restart_policy.allow(now):
        coord.abort(coord.restart_policy.storm_message(process.actor_id, why, now))
        return True
    incarnation = begin_incarnation(record, why, now)
    record.pid = coord.fleet.spawn(process.actor_id, incarnation).pid
    coord.log.warning("actor restarted", actor=process.actor_id, incarnation=incarnation,
                      previous=why, pid=record.pid)
    return True


def on_results_write(coord: Any, document: dict[str, Any]) -> None:
    """Every results write: the soak checkpoint first, then free the document's garbage.

    The checkpoint (soak mode only) holds what a resume needs, written atomically before
    the results so it is never older than them.

    The collection is what keeps the coordinator's RSS flat: each results document merges
    and decodes HdrHistograms (about 170 KiB of counts each, dozens per document), and an
    ``hdrh`` histogram sits in a reference cycle with its encoder, so refcounting never
    frees it. Decoded histograms live for a checkpoint interval, reach the oldest
    generation, and left to the collector's own schedule grew the coordinator by ~5 MiB
    per results write. A full collection once per interval costs milliseconds.
    """
    if coord.config.mode == "soak":
        try:
            results.write_json_atomic(coord.run_dir / checkpoint.CHECKPOINT_FILE,
                                      checkpoint.build(coord, document))
        except OSError as exc:
            coord.log.error("could not write checkpoint", error=str(exc))
    gc.collect()


def sections(coord: Any, elapsed: float) -> dict[str, Any]:
    """Results keys for supervision, target restarts/resources and (soak) budget/resumes."""
    now = time.time()
    elapsed = max(elapsed, coord.elapsed_before)
    found: dict[str, Any] = {
        "supervision": {
            "restart_actors": coord.config.restart_actors,
            "max_restarts_per_hour": coord.config.max_restarts_per_hour,
            "actor_restarts": sum(r.restarts for r in coord.actors.values()),
            "restarts_in_last_hour": coord.restart_policy.in_window(now),
            "late_frames_from_dead_incarnations": coord.merger.late_frames,
        },
        "target_restarts": coord.watch.restarts.report(now),
        "target_resources": coord.watch.report(),
        "elapsed_s": round(elapsed, 3),
    }
    if coord.config.mode == "soak" or coord.resumes:
        duration = coord.config.duration_s
        found["soak"] = {
            "duration_s": duration,
            "elapsed_s": round(elapsed, 3),
            "remaining_s": round(max(0.0, duration - elapsed), 3),
            "checkpoint_interval_s": coord.config.checkpoint_interval_s,
            "checkpoint_file": checkpoint.CHECKPOINT_FILE,
            "checkpoint_at": results.iso(now),
        }
        found["resume"] = {"resumed": bool(coord.resumes), "count": len(coord.resumes),
                           "history": list(coord.resumes)}
    if coord.resumes:
        found["run_started_at"] = results.iso(coord.resumes[0].get("run_started_at"))
    return found
