"""What an ``assay loris`` run found: the per-second rows, the control verdict, the text.

How this works: the coordinator samples the merged counters once a second
(``IntervalSampler.sample``) and gets back one CSV row in slowhttptest's terms, while the
sampler remembers when the server first refused a dial and when the control traffic
first got nothing through. At the end ``section`` builds the ``loris`` block of the
results from the final counts, the control traffic's load summary
(``coordinator.load_report``) and the sampler; ``render`` turns it into lines of text.

slowhttptest's words, and what they mean here (the CSV header uses theirs):

* ``closed``: connections the server ended after connecting (FIN, an error answer such as
  408, or RST) - cumulative;
* ``pending``: dialed and not yet connected (our ``connecting``) - at that second;
* ``connected``: connected and still open (our ``still_open``) - at that second;
* ``error``: dials that failed (refused, reset in the handshake, timed out) - cumulative;
* ``service_available``: whether control requests got through in that second.

Pure: counters in, rows and dicts out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocols.loris import LorisCounts, LorisPlan

#: The control traffic is the load plan's scenario of this name.
CONTROL = "control"
CSV_HEADER = ("seconds,closed,pending,connected,error,service_available,control_ok,"
              "control_failed\n")


@dataclass(frozen=True)
class ControlTotals:
    """The control traffic's requests so far (cumulative, from the load counters)."""

    #: Requests due by the schedule (each either sent, queued, or dropped).
    due: int = 0
    #: Requests that finished (answered, or failed at the transport or by timeout).
    finished: int = 0
    failed: int = 0
    dropped: int = 0

    @property
    def ok(self) -> int:
        return self.finished - self.failed

    @property
    def success_pct(self) -> float | None:
        """Succeeded of due, in percent: a request dropped, still unanswered at the end,
        failed or answered with an error status is not a success. None: nothing was due."""
        return round(100.0 * self.ok / self.due, 2) if self.due else None

    @classmethod
    def from_counters(cls, counters: Mapping[str, int]) -> ControlTotals:
        prefix = f"load.{CONTROL}."
        get = counters.get
        return cls(get(prefix + "scheduled", 0), get(prefix + "requests", 0),
                   get(prefix + "failed", 0), get(prefix + "dropped", 0))


@dataclass(frozen=True)
class Row:
    """One second of the run in slowhttptest's terms (see the module docstring)."""

    second: int
    closed: int
    pending: int
    connected: int
    error: int
    service_available: str
    control_ok: int
    control_failed: int

    def csv(self) -> str:
        return (f"{self.second},{self.closed},{self.pending},{self.connected},{self.error},"
                f"{self.service_available},{self.control_ok},{self.control_failed}\n")

    def line(self, final: bool = False) -> str:
        """The live stats line (slowhttptest prints one a second), fixed-width."""
        when = "end" if final else f"{self.second}s"
        return (f"[{when:>6}] pending {self.pending:>5}  connected {self.connected:>5}  "
                f"closed {self.closed:>5}  error {self.error:>5}  service available "
                f"{self.service_available or '-':<3}  control ok {self.control_ok:>4} "
                f"failed {self.control_failed:>4}")


class IntervalSampler:
    """Turns cumulative counts sampled once a second into slowhttptest's rows."""

    def __init__(self) -> None:
        self.last_second = 0
        self.rows = 0
        self.previous = ControlTotals()
        #: "yes" / "no" for the last second that said anything; "" before the control.
        self.available = ""
        #: The second of the first row that saw a dial refused / no control request
        #: getting through.
        self.refusing_at_s: int | None = None
        self.unavailable_at_s: int | None = None

    def due(self, elapsed_s: float) -> bool:
        """Whether a new whole second has passed since the last row."""
        return math.floor(elapsed_s) > self.last_second

    def sample(self, elapsed_s: float, counts: LorisCounts, control: ControlTotals,
               final: bool = False) -> Row | None:
        """The row for this moment, labelled with its whole second; None when that second
        already has a row. A final row always comes, labelled with the second after the
        last row's when the run ended less than a second after it (labels stay
        consecutive, and the last counts are never lost).

        Service available: "yes" when a control request succeeded in that second, "no"
        when none did although some were due or failed, else as the second before (a
        control rate under one a second leaves seconds that say nothing).
        """
        second = math.floor(elapsed_s)
        if final:
            second = max(second, self.last_second + 1)
        elif second <= self.last_second:
            return None
        self.last_second = second
        self.rows += 1
        ok = control.ok - self.previous.ok
        failed = control.failed - self.previous.failed
        newly_due = control.due - self.previous.due
        self.previous = control
        if ok > 0:
            self.available = "yes"
        elif newly_due > 0 or failed > 0:
            self.available = "no"
        if self.available == "no" and self.unavailable_at_s is None:
            self.unavailable_at_s = second
        if counts.refusing and self.refusing_at_s is None:
            self.refusing_at_s = second
        return Row(second, counts.closed, counts.connecting, counts.still_open,
                   counts.connect_failed, self.available, ok, failed)


def verdict(plan: LorisPlan, control: ControlTotals) -> tuple[bool, str]:
    """The run's verdict and why: the control traffic's success % at or over the
    threshold. No control request due (a run cut short) cannot pass."""
    pct = control.success_pct
    if pct is None:
        return False, "no control request was due: nothing to judge"
    shown = f"control success {pct:.2f} % ({control.ok} of {control.due} due)"
    if pct >= plan.threshold_control:
        return True, f"{shown} >= {plan.threshold_control:g} %"
    return False, f"{shown} < {plan.threshold_control:g} %"


def section(plan: LorisPlan, counts: LorisCounts, control: ControlTotals,
            statuses: Mapping[str, int], sampler: IntervalSampler,
            control_summary: Mapping[str, Any]) -> dict[str, Any]:
    """The ``loris`` block of the results document (and of ``summary.json``)."""
    ok, why = verdict(plan, control)
    return {
        "mode": plan.mode.value, "connections": plan.connections, "rate": plan.rate,
        "interval_s": plan.interval_s, "duration_s": plan.duration_s, "path": plan.path,
        "body_length": plan.body_length if plan.mode.value == "body" else None,
        "ranges": plan.ranges if plan.mode.value == "range" else None,
        "opened": counts.opened, "connected": counts.connected,
        "connect_failed": counts.connect_failed,
        "connect_failed_by_cause": {"refused": counts.refused,
                                    "reset": counts.reset_at_connect,
                                    "timeout": counts.timeout, "other": counts.other},
        "closed_by_server": counts.closed_by_server, "reset": counts.reset,
        "connecting": counts.connecting, "still_open": counts.still_open,
        "never_dialed_fd_limit": counts.fd_limited,
        "answers": dict(statuses),
        "refusing_at_s": sampler.refusing_at_s,
        "control_unavailable_at_s": sampler.unavailable_at_s,
        "control_rate": plan.control_rate, "control_start_s": plan.control_start_s,
        "control_duration_s": plan.control_duration_s,
        "control_due": control.due, "control_ok": control.ok,
        "control_failed": control.failed, "control_dropped": control.dropped,
        "control_unfinished": max(0, control.due - control.dropped - control.finished),
        "control_success_pct": control.success_pct,
        "threshold_control": plan.threshold_control,
        "ok": ok, "verdict": why,
        "control": dict(control_summary),
    }


def render(block: Mapping[str, Any]) -> list[str]:
    """The loris findings as lines, one per finding (the run summary adds the rest)."""
    causes = block["connect_failed_by_cause"]
    answers = ", ".join(f"{code} x{n}" for code, n in block["answers"].items())
    lines = [
        f"  attack         {block['mode']}: {block['connections']} connections at "
        f"{block['rate']:g}/s, a drip every {block['interval_s']:g} s for "
        f"{block['duration_s']:g} s, path {block['path']}",
        f"  opened         {block['opened']} (connected {block['connected']}, still "
        f"connecting {block['connecting']})",
        f"  connect failed {block['connect_failed']} (refused {causes['refused']}, reset "
        f"{causes['reset']}, timeout {causes['timeout']}, other {causes['other']})",
        f"  closed         by the server {block['closed_by_server']}, reset {block['reset']}"
        + (f"; answers {answers}" if answers else ""),
        f"  still open     {block['still_open']} at the end",
    ]
    if block.get("never_dialed_fd_limit"):
        lines.append(f"  fd limit       {block['never_dialed_fd_limit']} never dialed "
                     "(open-file limit)")
    if block.get("refusing_at_s") is not None:
        lines.append(f"  refusing       the server started refusing dials at "
                     f"{block['refusing_at_s']} s")
    if block.get("control_unavailable_at_s") is not None:
        lines.append(f"  unavailable    control requests first got nothing through at "
                     f"{block['control_unavailable_at_s']} s")
    lines.append(f"  control        {block['control_due']} due at "
                 f"{block['control_rate']:g}/s from {block['control_start_s']:g} s: "
                 f"{block['control_ok']} ok, {block['control_failed']} failed, "
                 f"{block['control_dropped']} dropped, {block['control_unfinished']} "
                 "unanswered at the end")
    word = "ok" if block["ok"] else "FAILED"
    lines.append(f"  verdict        {word}: {block['verdict']}")
    return lines
