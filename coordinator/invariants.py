"""The invariant registry: every predicate assay judges, with its ID, severity and meaning.

An invariant is data: which counter (or ratio of counters) it reads, the threshold, and
what must have happened for the verdict to mean anything. ``judge_all`` turns merged
counters into passed / failed / not-judged entries; "not judged" always carries a reason,
because a silent pass on a slice that never ran is how broken servers get shipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from protocols.outcome import Severity
from protocols.tier2_checkers import INVARIANTS as TIER2_INVARIANTS


@dataclass(frozen=True)
class Invariant:
    id: str
    severity: Severity
    meaning: str
    #: The counter that must stay at or below ``limit`` (or the numerator of a ratio).
    counter: str
    #: Counter that must be > 0 for the verdict to mean anything (else "not judged").
    evidence_counter: str
    not_judged_reason: str
    #: With a denominator, the invariant is a ratio: counter / denominator <= limit (the
    #: denominator counts attempts, so it already includes the failures).
    denominator: str | None = None
    limit: float = 0

    def judge(self, counters: Mapping[str, int], not_run: Mapping[str, str]) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": self.id, "severity": self.severity.value,
                                 "meaning": self.meaning, "counter": self.counter}
        slice_name = self.counter.split(".", 1)[0]
        if slice_name in not_run:
            return {**entry, "status": "not_judged", "reason": not_run[slice_name]}
        value = counters.get(self.counter, 0)
        if counters.get(self.evidence_counter, 0) <= 0 and value == 0:
            return {**entry, "status": "not_judged", "reason": self.not_judged_reason}
        if self.denominator is not None:
            denominator = counters.get(self.denominator, 0)
            ratio = value / denominator if denominator else 0.0
            failed = ratio > self.limit
            entry.update(value=value, ratio=round(ratio, 6), limit=self.limit)
        else:
            failed = value > self.limit
            entry.update(value=value)
        return {**entry, "status": "failed" if failed else "passed"}


HIGH, MED, LOW = Severity.HIGH, Severity.MED, Severity.LOW

REGISTRY: tuple[Invariant, ...] = (
    Invariant("I-DRV-1", HIGH, "a value written was not read back (lost or stale write)",
              "markov.read_after_write_mismatch", "markov.read_after_write_checks",
              "the model declares no write-then-read pair, or none was walked"),
    Invariant("I-LIVENESS", HIGH, "the target process died or stopped accepting connections",
              "coord.target_down", "coord.health_probes", "no health probe ran"),
    Invariant("I-HANG", HIGH, "the target accepted connections but stopped answering",
              "coord.target_hung", "coord.health_probes", "no health probe ran"),
    # Pre-flight (coordinator.preflight): the target accepted TCP but could not answer one
    # plain GET on the health path; the run stops there (coordinator.broken_target). A run
    # that got as far as health probes passed its pre-flight.
    Invariant("I-PREFLIGHT-GARBAGE", HIGH, "the target answered a plain GET with bytes that "
              "are not a complete HTTP/1.x response (garbage, or cut off by a close)",
              "preflight.garbage", "coord.health_probes", "no pre-flight or health probe ran"),
    Invariant("I-PREFLIGHT-SILENT", HIGH, "the target accepted connections but answered a "
              "plain GET with nothing (no byte before the deadline, or a close/reset)",
              "preflight.silent", "coord.health_probes", "no pre-flight or health probe ran"),
    Invariant("I-PREFLIGHT-ENDLESS", HIGH, "the target's answer to a plain GET never ended "
              "(endless header lines, a body over the cap or unfinished at the deadline)",
              "preflight.endless", "coord.health_probes", "no pre-flight or health probe ran"),
    Invariant("I-ADV-ACCEPTED", HIGH, "the server accepted a request the RFC says it MUST reject",
              "adv.wrong_accepted", "adv.sent", "no adversarial case was sent"),
    Invariant("I-ADV-DESYNC", HIGH, "leftover bytes of a malformed request were parsed as a "
              "new request (request smuggling)",
              "adv.desync", "adv.sent", "no adversarial case was sent"),
    Invariant("I-ADV-MUST", MED, "the server broke an RFC 9110/9112 MUST on malformed input "
              "without opening a smuggling path (e.g. no close after CL+TE, bad Host accepted)",
              "adv.must_violation", "adv.sent", "no adversarial case was sent"),
    Invariant("I-H2C-CRASHED", HIGH, "after h2c upgrade churn the server stopped answering a "
              "plain request (died, refused, hung or answered garbage)", "h2c.crashed",
              "h2c.sent", "no h2c churn was sent"),
    Invariant("I-H2C-MUST", MED, "the server answered an h2c upgrade with garbage (not HTTP/1.x, "
              "a 101 without Upgrade: h2c, malformed HTTP/2 frames): a MUST missed, nothing "
              "carried on", "h2c.must_violation", "h2c.sent", "no h2c churn was sent"),
    Invariant("I-TLS-LIVE", HIGH, "during or after TLS-level torture (dripped, stalled, "
              "oversized or abandoned ClientHello, plaintext or garbage on the TLS port) a "
              "control request on a fresh TLS connection went unanswered, twice",
              "tls.control_failed", "tls.sent", "no TLS-level case was sent"),
    Invariant("I-TLS-MUST", MED, "the server carried on with a ServerHello where RFC 8446 "
              "says it MUST terminate the connection (record_overflow, unexpected record "
              "type, out-of-range length)", "tls.must_violation", "tls.sent",
              "no TLS-level case was sent"),
    # h2 torture slice (actors.h2_torture, protocols.h2_oracle): RFC 9113/7541 frame-level
    # conformance, one case per connection.
    Invariant("I-H2-ACCEPTED", HIGH, "the server served a malformed HTTP/2 request "
              "(RFC 9113 §8.1.1: CR/LF/NUL in a value, a bad field name, a connection-specific "
              "or Transfer-Encoding field, missing or repeated pseudo-headers)",
              "h2.accepted_malformed", "h2.sent", "no HTTP/2 case was sent"),
    Invariant("I-H2-CRASHED", HIGH, "after an HTTP/2 torture case the server stopped answering "
              "a PING on a fresh HTTP/2 connection (twice)", "h2.crashed", "h2.sent",
              "no HTTP/2 case was sent"),
    Invariant("I-H2-MUST", MED, "the server missed a MUST-level reaction of RFC 9113/7541 "
              "(a connection or stream error not raised, a frame it must ignore refused, a "
              "hang) without serving a malformed request", "h2.must_violation", "h2.sent",
              "no HTTP/2 case was sent"),
    Invariant("I-H2-FLOOD", HIGH, "an HTTP/2 flood (rapid reset, CONTINUATION, SETTINGS, PING, "
              "empty DATA, HPACK table size, zero window) made control requests on other "
              "connections fail or slow far beyond their baseline, or took memory it kept "
              "(confirmed by a second flood)", "h2flood.violation", "h2flood.sent",
              "no HTTP/2 flood was sent (target without HTTP/2, or the slice did not run)"),
    Invariant("I-WS-ACCEPTED", HIGH, "the server carried on after an RFC 6455 violation",
              "ws.accepted_bad_frame", "ws.sessions", "no WebSocket session was opened"),
    Invariant("I-WS-HANG", HIGH, "a WebSocket neither closed nor answered after a violation",
              "ws.hang_no_close", "ws.sessions", "no WebSocket session was opened"),
    Invariant("I-WS-MUST", MED, "the server broke an RFC 6455 MUST without letting a violation "
              "carry on (refusal without Sec-WebSocket-Version, forbidden Close code, Close or "
              "Ping left unanswered, garbage frames)",
              "ws.must_violation", "ws.sessions", "no WebSocket session was opened"),
    Invariant("I-WS-ECHO", HIGH, "a large valid WebSocket message came back altered (other "
              "bytes, length or opcode)", "ws.large_echo_altered", "ws.large.sessions",
              "no large WebSocket message was sent"),
    Invariant("I-WS-DROP", MED, "a large valid WebSocket message was lost: TCP dropped with no "
              "Close (RFC 6455 §7.1.7 SHOULD send one; a size limit is Close 1009)",
              "ws.large_dropped", "ws.large.sessions", "no large WebSocket message was sent"),
    Invariant("I-SSE-LEAK", HIGH, "SSE subscriber slots are not released after clients leave",
              "sse.leak", "sse.sent", "no SSE subscription was made"),
    # Black-box leak probe (coordinator.leak_probes): bursts of clients that leave
    # mid-request, then a plain request must be answered. Pseudo-slice "probe" carries the
    # reason when no probe judged (coordinator.leak_probe_runs.not_judged).
    Invariant("I-CONN-LEAK", HIGH, "the target stopped answering after a burst of clients "
              "that left mid-header, mid-body or right after connecting (a connection or "
              "descriptor leak)", "probe.conn_leak", "probe.conn.judged",
              "no connection leak probe ran"),
    Invariant("I-MKV-SERVER-ERRORS", MED, "more than 1 % of session requests got a 5xx",
              "markov.status_5xx", "markov.requests", "no session request completed",
              denominator="markov.requests", limit=0.01),
    Invariant("I-MKV-TRANSPORT", MED, "more than 1 % of session requests failed at the transport "
              "level (reset, timeout, refused)", "markov.errors", "markov.requests",
              "no session request was attempted", denominator="markov.requests", limit=0.01),
    Invariant("I-MKV-UNEXPECTED", MED, "more than 1 % of session responses had a status the "
              "model does not expect", "markov.unexpected_status", "markov.requests",
              "no session request completed", denominator="markov.requests", limit=0.01),
    # Response rules (protocols.response_rules) on every slice's responses, once per route.
    Invariant("I-RESP-MUST", MED, "a response broke an RFC 9110/9112 MUST (Date, Allow on 405, "
              "WWW-Authenticate on 401, Content-Length/Transfer-Encoding rules, field syntax)",
              "resp.violation", "resp.checked", "no response was checked"),
    Invariant("I-RESP-FRAMING", HIGH, "a response carried bytes past its framed end on a "
              "connection kept open (body after HEAD/204/304, Content-Length shorter than the "
              "body): the next response is read out of step", "resp.framing_violation",
              "resp.checked", "no response was checked"),
    # Target resource oracles (coordinator.resources): slopes of per-bucket minima after a
    # warm-up, above a noise floor. Not judged without a pid or a long enough run; the
    # coordinator then supplies the precise reason under the pseudo-slice "res".
    Invariant("I-MEM-RSS", HIGH, "the target's resident memory keeps growing under steady "
              "load (a leak, not a GC saw-tooth)", "res.rss_growing", "res.rss_judged",
              "target pid unknown or the run too short for a slope"),
    Invariant("I-FD-LEAK", HIGH, "the target's open file descriptors keep growing under "
              "steady load", "res.fds_growing", "res.fds_judged",
              "target pid unknown or the run too short for a slope"),
    Invariant("I-THREADS", MED, "the target's thread count keeps growing under steady load",
              "res.threads_growing", "res.threads_judged",
              "target pid unknown or the run too short for a slope"),
)

# Tier 2 (actors.tier2_walker, coordinator.tier2_slice): the checkers of
# protocols.tier2_checkers with their severities and RFC basis, one counter each; any
# finding fails the invariant. Not judged without --spec (the reason is the slice's).
REGISTRY += tuple(
    Invariant(inv.id, inv.severity, inv.meaning, f"tier2.finding.{inv.id}", "tier2.sequences",
              "no Tier 2 sequence ran")
    for inv in TIER2_INVARIANTS)

BY_ID = {inv.id: inv for inv in REGISTRY}
HIGH_COUNTERS = {inv.counter: inv for inv in REGISTRY if inv.severity is HIGH}


def judge_all(counters: Mapping[str, int], not_run: Mapping[str, str]) -> dict[str, list[dict]]:
    """Group verdicts; ``not_run`` maps a slice (or "coord") to why it did not run."""
    grouped: dict[str, list[dict]] = {"passed": [], "failed": [], "not_judged": []}
    for invariant in REGISTRY:
        entry = invariant.judge(counters, not_run)
        grouped[entry.pop("status")].append(entry)
    return grouped


def run_failed(grouped: Mapping[str, list[dict]]) -> bool:
    """HIGH and MED failures fail the run; LOW ones are reported only."""
    return any(e["severity"] in ("HIGH", "MED") for e in grouped["failed"])
