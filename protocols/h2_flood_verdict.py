"""The verdict on one HTTP/2 flood (I-H2-FLOOD): pure, from what was measured.

How this works: control requests run on other connections before the flood (the baseline)
and during it (one started at a fixed pace, so the median says for how much of the flood a
new client met that latency); the flood connection records how the server reacted
(GOAWAY, RST_STREAM, close, stopped reading, or nothing); with the target's pid, its RSS
before, at the peak and after. ``judge`` turns that into one ``Judgement``.

What fails, and why only that: RFC 9113 §10.5 asks servers to "track the use of these
features and set limits on their use" (a SHOULD) and lets them answer with
ENHANCE_YOUR_CALM (a MAY); it sets no limit. So every reaction passes, absorbing the flood
too (reported as "absorbed", information). What fails is the harm to others, measured
against a baseline taken on the same machine just before: a control request that fails or
times out, a 5xx the baseline did not get, or a median latency beyond
``max(ratio x baseline median, baseline median + slack)`` (far beyond the noise of a
2-core machine that also runs the load generator); and memory the flood took and kept
(growth above ``rss_limit`` still held after the flood). The caller confirms a violation by
re-running the flood once; only a repeat counts.
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from protocols.h2_frames import ErrorCode

MIB = 1024 * 1024


class Bound(enum.Enum):
    """How the server reacted on the flood connection (every one of them is allowed)."""

    #: GOAWAY (any code; ENHANCE_YOUR_CALM is §10.5's "MAY treat ... as a connection error").
    GOAWAY = "goaway"
    #: RST_STREAM on flood streams (refused or reset streams bound the work).
    RST = "rst_stream"
    #: The connection closed (FIN or RST) without a GOAWAY.
    CLOSED = "closed"
    #: Our send did not finish within the send timeout: the server stopped reading (TCP
    #: flow control bounds the flood).
    STOPPED_READING = "stopped_reading"
    #: None of the above: the flood was absorbed (information, not a failure).
    NONE = "absorbed"


class Verdict(enum.Enum):
    #: The server bounded the flood and others were served as before.
    BOUNDED = "bounded"
    #: No bound seen, others served as before: passes (the RFC sets no limit).
    ABSORBED = "absorbed"
    #: Control traffic failed or slowed far beyond noise, or memory was taken and kept.
    VIOLATION = "violation"
    #: Nothing to judge against (the baseline failed, no control request ran).
    UNJUDGED = "unjudged"


@dataclass(frozen=True)
class FloodReaction:
    """What the flood connection saw."""

    frames_sent: int = 0
    goaway_code: int | None = None
    rst_streams: int = 0
    #: "" while open at the end, else "eof" / "reset".
    closed: str = ""
    stopped_reading: bool = False

    @property
    def bound(self) -> Bound:
        if self.goaway_code is not None:
            return Bound.GOAWAY
        if self.rst_streams:
            return Bound.RST
        # Stopped reading first: a send that timed out cancels our TLS write, which breaks
        # the TLS stream, so a "reset" read after it is ours, not the server's close (a
        # server that closes first fails our send at once, and stopped_reading stays unset).
        if self.stopped_reading:
            return Bound.STOPPED_READING
        if self.closed:
            return Bound.CLOSED
        return Bound.NONE

    def describe(self) -> str:
        parts = []
        if self.goaway_code is not None:
            name = ErrorCode._value2member_map_.get(self.goaway_code)
            parts.append(f"GOAWAY {name.name if name else hex(self.goaway_code)}")
        if self.rst_streams:
            parts.append(f"{self.rst_streams} RST_STREAM")
        if self.closed:
            parts.append(f"connection closed ({self.closed})")
        if self.stopped_reading:
            parts.append("stopped reading")
        return ", ".join(parts) or "nothing (absorbed)"


@dataclass(frozen=True)
class ControlSample:
    """One control request: its latency (None when it failed) and status."""

    latency_s: float | None
    status: int | None = None
    error: str = ""


@dataclass(frozen=True)
class RssTrace:
    """The target's resident memory in bytes around one flood."""

    before: int
    peak: int
    after: int


@dataclass(frozen=True)
class Criteria:
    ratio: float = 10.0
    slack_s: float = 0.25
    rss_limit: int = 64 * MIB


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    bound: Bound
    baseline_p50_s: float | None
    during_p50_s: float | None
    failures: int


def p50(samples: Sequence[ControlSample]) -> float | None:
    latencies = [s.latency_s for s in samples if s.latency_s is not None]
    return statistics.median(latencies) if latencies else None


def _failed(sample: ControlSample, baseline_5xx: bool) -> bool:
    if sample.latency_s is None:
        return True
    return sample.status is not None and sample.status >= 500 and not baseline_5xx


def judge(baseline: Sequence[ControlSample], during: Sequence[ControlSample],
          reaction: FloodReaction, rss: RssTrace | None,
          criteria: Criteria = Criteria()) -> Judgement:
    """The verdict on one flood; see the module docstring for what fails and why."""
    bound = reaction.bound
    before, now = p50(baseline), p50(during)

    def result(verdict: Verdict, reason: str, failures: int = 0) -> Judgement:
        return Judgement(verdict, reason, bound, before, now, failures)

    if not baseline or any(s.latency_s is None for s in baseline):
        bad = next((s.error for s in baseline if s.latency_s is None), "none ran")
        return result(Verdict.UNJUDGED, f"control requests failed before the flood: {bad}")
    if not during:
        return result(Verdict.UNJUDGED, "no control request ran during the flood")
    assert before is not None
    baseline_5xx = any((s.status or 0) >= 500 for s in baseline)
    failed = [s for s in during if _failed(s, baseline_5xx)]
    if failed:
        why = "; ".join(sorted({s.error or f"answered {s.status}" for s in failed}))
        return result(Verdict.VIOLATION, f"{len(failed)} of {len(during)} control requests "
                      f"on other connections failed during the flood ({why}); server: "
                      f"{reaction.describe()}", len(failed))
    limit = max(criteria.ratio * before, before + criteria.slack_s)
    if now is not None and now > limit:
        return result(Verdict.VIOLATION, f"control median latency {now * 1000:.0f} ms during "
                      f"the flood, baseline {before * 1000:.0f} ms (limit "
                      f"{limit * 1000:.0f} ms); server: {reaction.describe()}")
    if rss is not None and rss.after - rss.before > criteria.rss_limit:
        return result(Verdict.VIOLATION, f"target memory grew {_mib(rss.after - rss.before)} "
                      f"(peak {_mib(rss.peak - rss.before)}) and was still held after the "
                      f"flood (limit {_mib(criteria.rss_limit)}); server: "
                      f"{reaction.describe()}")
    if bound is Bound.NONE:
        return result(Verdict.ABSORBED, "absorbed without a bound; control traffic kept its "
                      "latency and success")
    return result(Verdict.BOUNDED, f"bounded ({reaction.describe()}); control traffic kept "
                  "its latency and success")


def _mib(value: int) -> str:
    return f"{value / MIB:.0f} MiB"
