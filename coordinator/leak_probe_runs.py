"""When the black-box leak probes run during a run, and what the run records of them.

How this works: one ``LeakProbes`` belongs to one coordinator. ``end_of_run`` runs both
probes (``coordinator.sse_slot_probe``, ``coordinator.leak_probes``) once after the walkers
stopped and before the final judgement, bounded by ``END_BUDGET_S`` plus the grace
periods and cut short by an interrupt; ``periodic`` runs them every
``--leak-probe-interval`` while the walkers run (the soak preset: every 10 minutes),
counting the sse walkers' own subscriptions as tolerance. A verdict moves the ``probe.*``
counters and, when it is a violation, the HIGH counter of its invariant (``sse.leak`` for
I-SSE-LEAK, ``probe.conn_leak`` for I-CONN-LEAK) through the coordinator's trip path, with
the probe's report as evidence. ``section`` is the results' ``leak_probes`` block;
``not_judged`` gives I-CONN-LEAK its reason while no connection probe has judged anything
(probes off, interrupted, target not answering).
"""

from __future__ import annotations

import time
from collections.abc import Callable, MutableMapping
from typing import Any

import trio

from coordinator import leak_probes, sse_slot_probe
from coordinator.logs import get_logger
from coordinator.results import iso
from protocols.conn_leak import CONFIRM_MAX_S
from protocols.leak_probes import WITNESS_WAIT_S
from protocols.outcome import Verdict

#: Time for both probes on a healthy target, beyond their grace periods.
END_BUDGET_S = 25.0
#: Probe runs listed in the results (a week-long soak keeps only the latest).
MAX_RUNS_KEPT = 48
#: Default ``--leak-probe-interval`` of ``assay soak``.
SOAK_INTERVAL_S = 600.0
CONN_COUNTER = "probe.conn_leak"
SSE_COUNTER = "sse.leak"

Trip = Callable[[str, dict[str, Any]], None]


def _not_judged(reason: str) -> str:
    return reason if reason.startswith("not judged") else f"not judged: {reason}"


class LeakProbes:
    """The probes of one run: schedule, counters, trips and the results section."""

    def __init__(self, config: Any, inputs: Any, counters: MutableMapping[str, int],
                 examples: MutableMapping[str, Any], trip: Trip) -> None:
        self.enabled: bool = config.leak_probes
        interval = config.leak_probe_interval_s
        if interval is None:  # by mode: a soak probes every 10 minutes, a run only at its end
            interval = SOAK_INTERVAL_S if config.mode == "soak" else 0.0
        self.interval_s: float | None = interval or None
        self.sse_cap: int = config.leak_probe_sse_cap
        self.grace_s: float = config.leak_probe_grace_s
        self.max_burst: int = config.leak_probe_max_burst
        self.target_url: str = inputs.target_url
        self.health_path: str = inputs.health_path
        self.sse_path: str = inputs.settings.get("sse_path") or "/events"
        per_slice = inputs.walker_plan.per_slice
        self.sse_walkers: int = per_slice.get("sse", 0)
        self.sse_absent: str | None = None if "sse" in per_slice else _not_judged(
            inputs.not_run.get("sse", "the sse slice did not run"))
        self._counters = counters
        self._examples = examples
        self._trip = trip
        self.runs: list[dict[str, Any]] = []
        self.total_runs = 0
        self.summary: dict[str, dict[str, Any]] = {}
        self.log = get_logger("leak-probes")

    # -- scheduling ----------------------------------------------------------------------
    async def end_of_run(self, stop: Callable[[], bool],
                         down: Callable[[], str | None] = lambda: None) -> None:
        """Both probes once, after the walkers stopped; an interrupt (``stop()``) cuts it.
        A target the health monitor sees down or hung (``down()`` says why) is not probed:
        it cannot answer, and its death already has its own verdict."""
        if not self.enabled:
            return
        reason = down()
        if reason is not None:
            for probe in ("sse", "conn"):
                self._summarise(probe, Verdict.UNJUDGED,
                                f"not judged: the target is down ({reason})")
            return
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                async def watch() -> None:
                    while not stop():
                        await trio.sleep(0.1)
                    scope.cancel()

                nursery.start_soon(watch)
                with trio.move_on_after(self._hard_limit()):
                    await self.run_once("end of run", tolerance=0)
                nursery.cancel_scope.cancel()

    def _probe_budget(self) -> float:
        """The connection probe's budget: its grace periods (a recovery check waits one)
        and half of ``END_BUDGET_S`` for the traffic itself."""
        return self.grace_s * 2 + END_BUDGET_S / 2

    def _sse_budget(self) -> float:
        """The SSE probe may also wait for a write-driven broker's heartbeat (the witness)."""
        return max(self.grace_s, WITNESS_WAIT_S) + self.grace_s + END_BUDGET_S / 2

    def _hard_limit(self) -> float:
        """Both probes, the connection probe's confirmation of a silence, and slack for the
        last operations' own deadlines."""
        return self._sse_budget() + self._probe_budget() + CONFIRM_MAX_S + 10.0

    async def periodic(self) -> None:
        """Every ``interval_s`` while the walkers run; returns at once when not asked for."""
        if not self.enabled or not self.interval_s:
            return
        while True:
            await trio.sleep(self.interval_s)
            with trio.move_on_after(self._hard_limit()):
                await self.run_once("periodic", tolerance=self.sse_walkers)

    async def run_once(self, when: str, *, tolerance: int) -> dict[str, Any]:
        """Run the SSE probe (when its route exists), then the connection probe."""
        began = time.time()
        entry: dict[str, Any] = {"when": when, "at": iso(began)}
        try:
            return await self._probe_into(entry, when, tolerance, began)
        finally:
            if "elapsed_s" not in entry:  # cut short (the run's end, an interrupt, the limit)
                entry.update(elapsed_s=round(time.time() - began, 3), cut_short=True)
                self.runs = [*self.runs, entry][-MAX_RUNS_KEPT:]

    async def _probe_into(self, entry: dict[str, Any], when: str, tolerance: int,
                          began: float) -> dict[str, Any]:
        if self.sse_absent is not None:
            entry["sse"] = {"verdict": Verdict.UNJUDGED.value, "reason": self.sse_absent}
        else:
            entry["sse"] = await sse_slot_probe.probe_sse(
                self.target_url, self.sse_path, cap=self.sse_cap, grace_s=self.grace_s,
                tolerance=tolerance, budget_s=self._sse_budget(), plain_path=self.health_path)
            entry["sse"]["elapsed_s"] = round(time.time() - began, 3)
        self._account("sse", entry["sse"], when)
        conn_began = time.time()
        entry["conn"] = await leak_probes.probe_connections(
            self.target_url, self.health_path, max_burst=self.max_burst,
            grace_s=self.grace_s, budget_s=self._probe_budget())
        entry["conn"]["elapsed_s"] = round(time.time() - conn_began, 3)
        self._account("conn", entry["conn"], when)
        entry["elapsed_s"] = round(time.time() - began, 3)
        self.total_runs += 1
        self.runs = [*self.runs, entry][-MAX_RUNS_KEPT:]
        self.log.info("leak probes", when=when, sse=entry["sse"]["verdict"],
                      conn=entry["conn"]["verdict"], elapsed_s=entry["elapsed_s"])
        return entry

    # -- accounting ----------------------------------------------------------------------
    def _add(self, name: str, value: int = 1) -> None:
        self._counters[name] = self._counters.get(name, 0) + value

    def _account(self, probe: str, report: dict[str, Any], when: str) -> None:
        verdict = Verdict(report["verdict"])
        if probe == "sse" and "opened_first" in report:
            self._add("probe.sse.runs")
            self._add("probe.sse.opened_first", report.get("opened_first", 0))
            self._add("probe.sse.opened_second", report.get("opened_second", 0))
        if probe == "conn" and report.get("bursts"):
            self._add("probe.conn.runs")
            self._add("probe.conn.bursts", len(report["bursts"]))
            self._add("probe.conn.clients", sum(b["size"] for b in report["bursts"]))
            if verdict is not Verdict.UNJUDGED:
                self._add("probe.conn.judged")
        self._summarise(probe, verdict, report["reason"])
        if verdict is not Verdict.VIOLATION:
            return
        counter = SSE_COUNTER if probe == "sse" else CONN_COUNTER
        self._add(counter)
        evidence = {"check": f"black-box {probe} leak probe ({when})", **report}
        self._examples.setdefault(counter, evidence)
        self._trip(counter, {"evidence": evidence, "received_at": time.time(),
                             "via": "leak probe"})

    def _summarise(self, probe: str, verdict: Verdict, reason: str) -> None:
        rank = {Verdict.VIOLATION: 3, Verdict.PASS: 2, Verdict.UNJUDGED: 1}
        current = self.summary.get(probe)
        if current is None or rank[verdict] >= rank[Verdict(current["verdict"])]:
            self.summary[probe] = {"verdict": verdict.value, "reason": reason}

    # -- results -------------------------------------------------------------------------
    def not_judged(self) -> dict[str, str]:
        """``{"probe": reason}`` while I-CONN-LEAK has no verdict (its pseudo-slice)."""
        conn = self.summary.get("conn")
        if self._counters.get("probe.conn.judged", 0) or self._counters.get(CONN_COUNTER, 0):
            return {}  # judged, maybe before a soak resumed (the counters are checkpointed)
        if not self.enabled:
            return {"probe": "leak probes are off (--leak-probes off)"}
        if conn is None:
            return {"probe": "the leak probes have not run (they run at the end of the run, "
                             "after the walkers stop)"}
        return {"probe": conn["reason"].removeprefix("not judged: ")}

    def section(self) -> dict[str, Any]:
        """The results' ``leak_probes`` block."""
        return {
            "enabled": self.enabled,
            "interval_s": self.interval_s,
            "grace_s": self.grace_s,
            "sse_cap": self.sse_cap,
            "max_burst": self.max_burst,
            "runs_total": self.total_runs,
            "counters": {name: value for name, value in sorted(self._counters.items())
                         if name.startswith("probe.")},
            "sse": self.summary.get("sse") or {"verdict": Verdict.UNJUDGED.value,
                                               "reason": self.sse_absent or _not_judged(
                                                   "the probes have not run")},
            "conn": self.summary.get("conn") or {"verdict": Verdict.UNJUDGED.value,
                                                 "reason": _not_judged(self.not_judged().get(
                                                     "probe", "no verdict"))},
            "runs": self.runs,
        }
