"""Fleet commands other than ``assay run``: what the coordinator's run does differently.

``assay load``, ``assay hold`` and ``assay loris`` are ordinary fleet runs (same
coordinator, actors, tallies, histograms) whose walkers run their own slices, one walker
per slice per actor (``fleet_walker_plan``). What such a run adds - a watch task beside
the run (progress, ending early, aborting), its block of the results document, its own
verdict, its summary file and text - is a ``RunExtension``, chosen from the run settings
by ``of``. The coordinator calls it at fixed points and knows nothing else about it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import trio

from coordinator.config import RunConfig
from coordinator.planning import WalkerPlan

if TYPE_CHECKING:
    from coordinator.run import Coordinator


SUMMARY_FILE = "summary.json"


class RunExtension(Protocol):
    #: The key of its block in ``validate-results.json`` (and of its settings).
    KEY: str
    #: True: print no summary at the end (a caller that runs many, as ``assay slo`` does).
    quiet: bool

    async def watch(self, coord: Coordinator, running: trio.CancelScope) -> None:
        """Runs beside the walkers; cancelling ``running`` ends the run (results kept)."""

    def section(self, coord: Coordinator, elapsed: float) -> dict[str, Any]: ...

    def failed(self, document: dict[str, Any]) -> bool:
        """Its own verdict failed (exit 1), whatever the invariants say."""

    def write_summary(self, coord: Coordinator, document: dict[str, Any]) -> None: ...

    def render(self, document: dict[str, Any]) -> str: ...


def add_output_options(add: Callable[..., Any], procs_default: str | None = None) -> None:
    """The options every fleet command shares with ``assay run`` for where and how it
    runs and reports: actor processes, results directory, log format, config file, label,
    and the extra copy of ``summary.json``."""
    add("--procs", default=procs_default, help="actor processes: N or auto = one per core "
        f"(default {procs_default or 'auto'})")
    add("--results", help="parent directory for run results (default ./results)")
    add("--log-format", help="console (default) or json")
    add("--config", type=Path, help="TOML file with run settings (table [run])")
    add("--label", help="label in the results directory name")
    add("--summary-json", type=Path, metavar="FILE", help="also write the summary here")


def write_summary(coord: Coordinator, key: str, document: dict[str, Any],
                  also: Path | None) -> None:
    """``summary.json`` in the run directory (and ``also``, a ``--summary-json`` file):
    the command's block of the results with the run's status, exit code, target and path."""
    from coordinator.results import write_json_atomic

    summary = {**document.get(key, {}), "status": document.get("status"),
               "exit_code": document.get("exit_code"),
               "target": document.get("target", {}).get("url"),
               "results_path": document.get("results_path")}
    for path in [coord.run_dir / SUMMARY_FILE, *([also] if also is not None else [])]:
        try:
            write_json_atomic(path, summary)
        except OSError as exc:
            coord.log.error(f"could not write the {key} summary", path=str(path),
                            error=str(exc))


def headline(command: str, document: dict[str, Any]) -> str:
    """``assay load LABEL: PASSED (exit 0) in 12.3 s``: the first line of a command's text."""
    return (f"assay {command} {document.get('label')}: "
            f"{str(document.get('status')).upper()} (exit {document.get('exit_code')}) in "
            f"{document.get('elapsed_s', 0):.1f} s")


def of(settings: dict[str, Any]) -> RunExtension | None:
    """The extension the run settings ask for, or None for a plain ``assay run``."""
    if settings.get("loris") is not None:
        from coordinator.loris_run import LorisRun

        return LorisRun.of(settings)
    if settings.get("hold") is not None:
        from coordinator.hold_run import HoldRun

        return HoldRun.of(settings)
    if settings.get("watch") is not None:
        from coordinator.watch_run import WatchRun

        return WatchRun.of(settings)
    if settings.get("proxy") is not None:
        from coordinator.proxy_run import ProxyRun

        return ProxyRun.of(settings)
    if settings.get("load_plan") is not None:
        from coordinator.load_run import LoadRun

        return LoadRun.of(settings)
    return None


def fleet_walker_plan(config: RunConfig) -> WalkerPlan:
    """One walker per slice of ``config.slices`` on every actor (local, then remote): each
    runs its share of the command's plan (``slice_share`` says which)."""
    local = config.resolved_procs()
    total = local + config.remote_actors
    per_actor: dict[int, list[tuple[int, str]]] = {}
    walker = 0
    for actor in range(total):
        per_actor[actor] = []
        for name in config.slices:
            per_actor[actor].append((walker, name))
            walker += 1
    return WalkerPlan({name: total for name in config.slices}, per_actor, [],
                      tuple(range(local, total)))
