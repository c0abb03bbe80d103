"""Soak checkpoints, and resuming a soak whose coordinator was killed.

How this works: in soak mode every results write (each ``--checkpoint-interval``, default
60 s, and the final one) is preceded by an atomic write of ``checkpoint.json`` beside
``validate-results.json``. It holds what a resumed coordinator needs to go on as if it had
never died: the merged tally state (``TallyMerger.to_state``: cumulative snapshots per
actor incarnation), the coordinator's own counters (health, post-run, target watch), the
trips, per-actor incarnations and restarts, the restart window, the elapsed time and the
stored configuration with its digest.

``assay soak --resume DIR`` loads it, refuses (exit 2, one line) anything it cannot
continue honestly - not a run directory, a plain ``run``, a finished soak, a flag that
contradicts the stored configuration, a changed model or spec - and otherwise restarts the
fleet with *new incarnations* of the same actor ids: their tallies add on top of the
checkpointed snapshots, so nothing is counted twice and at most one checkpoint interval (what
the dead coordinator merged after its last checkpoint) is lost. The remaining budget is the
stored duration minus the checkpointed elapsed time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from coordinator.config import REDACTED_KEY, ConfigError, RunConfig
from coordinator.logs import get_logger
from protocols.tally import TallyMerger

CHECKPOINT_FILE = "checkpoint.json"
CHECKPOINT_VERSION = 1
#: Settings a resume may change: they affect how the run is shown or where it is written,
#: not what it measures. Everything else must match the stored configuration, except
#: ``extra`` (other subsystems' settings, e.g. the incident path's): a resume keeps the
#: stored ones, since its own command line only has their defaults.
MAY_DIFFER = frozenset({"log_format", "progress_interval_s", "checkpoint_interval_s",
                        "results_dir", "target_pid", "extra", "remote_ready_timeout_s",
                        "curve_secret_key", "curve_authorized_keys"})

#: A run whose results say one of these used its whole budget and was judged.
FINISHED = frozenset({"passed", "failed"})


class ResumeError(ConfigError):
    """The directory cannot be resumed; one line, exit 2."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def identity(config_json: dict[str, Any]) -> dict[str, Any]:
    """The stored configuration without the settings a resume may change."""
    return {k: v for k, v in config_json.items() if k not in MAY_DIFFER}


def config_digest(config: RunConfig) -> str:
    return hashlib.sha256(_canonical(identity(config.to_json())).encode()).hexdigest()[:16]


#: Run settings that describe the target as found at start rather than what the user asked
#: for: a resumed soak relaunches the refapp (a new pid) and probes HTTP/2 again.
OBSERVED_SETTINGS = ("target_pid", "h2_via")


def inputs_digest(settings: dict[str, Any]) -> str:
    """Digest of what the actors are given (model and spec texts, paths, timeouts)."""
    asked = {k: v for k, v in settings.items() if k not in OBSERVED_SETTINGS}
    return hashlib.sha256(_canonical(asked).encode()).hexdigest()[:16]


def build(coord: Any, document: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint of a live coordinator, consistent with ``document`` (same instant)."""
    started = coord.resumes[0]["started_at"] if coord.resumes else coord.started_at
    run_started = (coord.resumes[0]["run_started_at"] if coord.resumes
                   else coord.run_started)
    return {
        "checkpoint_version": CHECKPOINT_VERSION,
        "written_at": time.time(),
        "status": document.get("status"),
        "exit_code": document.get("exit_code"),
        "run_id": coord.run_id,
        "owner": {"pid": os.getpid(), "host": os.uname().nodename},
        "mode": coord.config.mode,
        "label": coord.inputs.label,
        "seed": coord.inputs.seed,
        "config": coord.config.to_json(),
        "config_digest": config_digest(coord.config),
        "inputs_digest": inputs_digest(coord.inputs.settings),
        "elapsed_s": max(float(document.get("elapsed_s") or 0.0), coord.elapsed_before),
        "started_at": started,
        "run_started_at": run_started,
        "tally": coord.merger.to_state(),
        "health": {"counters": coord.health.counters, "examples": coord.health.examples},
        "coordinator": {"counters": coord.coord_counters, "examples": coord.coord_examples},
        "trips": coord.trips,
        "actors": {str(a): {"incarnations": r.incarnations, "restarts": r.restarts,
                            "restart_history": r.restart_history,
                            "live_incarnation": r.live_incarnation}
                   for a, r in coord.actors.items()},
        "restart_policy": coord.restart_policy.to_state(),
        "watch": coord.watch.to_state(),
        "resumes": coord.resumes,
    }


def load(run_dir: Path) -> dict[str, Any]:
    """Read and sanity-check a checkpoint; ResumeError says why it cannot be resumed."""
    if not run_dir.is_dir():
        raise ResumeError(f"cannot resume {run_dir}: not a directory")
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        if (run_dir / "validate-results.json").exists():
            raise ResumeError(f"cannot resume {run_dir}: no {CHECKPOINT_FILE} (only soaks "
                              "write checkpoints; this is a plain run)")
        raise ResumeError(f"cannot resume {run_dir}: not an assay run directory "
                          f"(no {CHECKPOINT_FILE})")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResumeError(f"cannot resume {run_dir}: {CHECKPOINT_FILE} is unreadable "
                          f"({exc})") from None
    if not isinstance(data, dict) or data.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise ResumeError(f"cannot resume {run_dir}: {CHECKPOINT_FILE} has an unknown format")
    for key in ("config", "tally", "elapsed_s", "run_id"):
        if key not in data:
            raise ResumeError(f"cannot resume {run_dir}: {CHECKPOINT_FILE} lacks {key!r}")
    if data.get("status") in FINISHED:
        raise ResumeError(f"cannot resume {run_dir}: the soak already finished "
                          f"({data['status']}); nothing is left to run")
    return data


def config_from_json(stored: dict[str, Any]) -> RunConfig:
    """Rebuild the RunConfig a checkpoint was written with (unknown keys are ignored)."""
    kinds = {f.name: f for f in dataclasses.fields(RunConfig)}
    values: dict[str, Any] = {}
    for name, value in stored.items():
        f = kinds.get(name)
        if f is None:
            continue
        if name in ("results_dir", "spec", "markov", "curve_authorized_keys"):
            value = None if value is None else Path(value)
        elif name == "curve_secret_key" and value == REDACTED_KEY:
            value = None
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return RunConfig(**values)


def conflicts(stored: RunConfig, requested: RunConfig) -> list[str]:
    """Settings the resume command asks for that differ from the stored run (flag spelling)."""
    before, after = identity(stored.to_json()), identity(requested.to_json())
    found = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            flag = "--" + key.removesuffix("_s").replace("_", "-")
            found.append(f"{flag} {after.get(key)!r} conflicts with the stored config "
                         f"({before.get(key)!r})")
    return found


def resume_into(coord: Any, data: dict[str, Any], run_dir: Path) -> None:
    """Give a freshly built coordinator the checkpointed state, before its fleet starts."""
    if data.get("inputs_digest") not in (None, inputs_digest(coord.inputs.settings)):
        raise ResumeError(f"cannot resume {run_dir}: the Markov model, OpenAPI spec or route "
                          "settings changed since the soak started")
    coord.run_id = str(data["run_id"])
    coord.log = get_logger("coordinator").bind(run_id=coord.run_id)
    coord.merger = TallyMerger.from_state(data["tally"])
    coord.health.counters.update(data.get("health", {}).get("counters", {}))
    coord.health.examples.update(data.get("health", {}).get("examples", {}))
    coord.coord_counters.update(data.get("coordinator", {}).get("counters", {}))
    coord.coord_examples.update(data.get("coordinator", {}).get("examples", {}))
    coord.trips.update(data.get("trips", {}))
    for key, stored in data.get("actors", {}).items():
        record = coord.actors.get(int(key))
        if record is None:
            continue
        record.restarts = int(stored.get("restarts", 0))
        record.restart_history = list(stored.get("restart_history", []))
        if record.remote:  # their incarnations are their own (see coordinator.remote_actors)
            known = [*coord.merger.incarnations_of(record.actor_id),
                     *([stored["live_incarnation"]] if isinstance(
                         stored.get("live_incarnation"), int) else [])]
            record.live_incarnation = max(known, default=None)
            continue
        used = max([int(stored.get("incarnations", 1)) - 1,
                    *coord.merger.incarnations_of(record.actor_id)])
        record.incarnations = used + 2  # the live incarnation is incarnations - 1
    coord.restart_policy.restore(data.get("restart_policy", {}))
    coord.watch.restore(data.get("watch", {}))
    elapsed = float(data["elapsed_s"])
    coord.elapsed_before = elapsed
    previous = list(data.get("resumes", []))
    first = previous[0] if previous else {}
    now = time.time()
    coord.resumes = [*previous, {
        "at": now,
        "from_checkpoint_at": data.get("written_at"),
        "elapsed_at_resume_s": round(elapsed, 3),
        "remaining_s": round(max(0.0, coord.config.duration_s - elapsed), 3),
        "coordinator_down_s": (round(now - float(data["written_at"]), 3)
                               if data.get("written_at") else None),
        "previous_status": data.get("status"),
        "started_at": first.get("started_at", data.get("started_at")),
        "run_started_at": first.get("run_started_at", data.get("run_started_at")),
    }]
    coord.started_at = float(coord.resumes[0]["started_at"] or coord.started_at)
