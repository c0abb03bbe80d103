"""``assay watch``: from the merged, time-ordered records to windows, counts and verdicts.

How this works: a failed request is one whose result is not status 200 (a connection
error, a timeout, a 502 from the proxy...). Consecutive failures in time order, fleet-wide,
form a failure window that the next success closes. A failure counts against the proxy
(I-RECONF-FAIL) only if at least one backend was up when it was sent: the coordinator
probes each backend's ``/healthz`` directly (``BackendHealth``, which allows for the
probes' blind spot); without backend ports every failure counts. "Front changed" is a
client's request leaving from another local port than its previous one (a new connection
to the proxy), "back changed" the same for the proxy's source port toward the backend.
Whether keep-alive front connections survive a reload is informational: a proxy may
close idle connections when it reloads (RFC 9112 §9.6: "A client, server, or proxy MAY
close the transport connection at any time").
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from protocols.watch_records import NONE, WatchRecord

RECONF_FAIL = "I-RECONF-FAIL"
RECONF_MEANING = ("a request through the proxy failed (connection error or status other "
                  "than 200) while at least one backend was up")
#: Width of one bucket of "backends seen over time".
BUCKET_S = 1.0
#: Failure windows listed in full; the rest are counted.
MAX_WINDOWS = 100

# Tally counters (the walker counts them; the live line reads them).
REQUESTS = "watch.requests"
OK = "watch.ok"
FAILED = "watch.failed"
FRONT_CHANGED = "watch.front_changed"
BACK_CHANGED = "watch.back_changed"
RETRIED = "watch.retried"
DONE = "watch.done"
BACKEND_PREFIX = "watch.backend."
CAUSE_PREFIX = "watch.cause."


@dataclass(frozen=True)
class HealthSample:
    at_us: int
    port: int
    up: bool


class BackendHealth:
    """The up/down timeline of each backend port, from direct ``/healthz`` probes (the
    coordinator keeps only the changes).

    A probe sees a backend every ``slack_us`` at best, so a backend that died just after
    a probe still reads as up for a while. A backend counts as up for a request only if
    the last probe before the request said up and no probe within ``slack_us`` after it
    said down: a failure in that blind spot is not charged to the proxy.
    """

    def __init__(self, ports: Iterable[int], samples: Iterable[HealthSample],
                 slack_us: int = 0) -> None:
        self.ports = tuple(ports)
        self.slack_us = slack_us
        self._times: dict[int, list[int]] = {p: [] for p in self.ports}
        self._states: dict[int, list[bool]] = {p: [] for p in self.ports}
        for sample in sorted(samples, key=lambda s: s.at_us):
            if sample.port in self._times:
                self._times[sample.port].append(sample.at_us)
                self._states[sample.port].append(sample.up)

    def up_at(self, port: int, at_us: int) -> bool:
        """Up at the last probe at or before ``at_us`` (before the first: the first's;
        never probed: up, so that a failure is never excused by a missing probe) and not
        seen down within the slack after it."""
        times, states = self._times[port], self._states[port]
        if not times:
            return True
        after = bisect_right(times, at_us)
        if not states[max(0, after - 1)]:
            return False
        return all(states[after:bisect_right(times, at_us + self.slack_us)])

    def any_up(self, at_us: int) -> bool:
        return not self.ports or any(self.up_at(port, at_us) for port in self.ports)


@dataclass
class FailureWindow:
    start_us: int
    end_us: int
    count: int = 0
    #: Failures sent while at least one backend was up (the ones I-RECONF-FAIL counts).
    counted: int = 0
    causes: Counter[str] = field(default_factory=Counter)

    def to_json(self, start_us: int) -> dict[str, Any]:
        return {"start_us": self.start_us - start_us, "end_us": self.end_us - start_us,
                "count": self.count, "counted": self.counted, "causes": dict(self.causes)}


def failure_windows(records: Iterable[WatchRecord], health: BackendHealth) -> list[FailureWindow]:
    windows: list[FailureWindow] = []
    open_window: FailureWindow | None = None
    for record in records:
        if record.ok:
            open_window = None
            continue
        if open_window is None:
            open_window = FailureWindow(record.at_us, record.at_us)
            windows.append(open_window)
        open_window.end_us = record.at_us
        open_window.count += 1
        open_window.counted += health.any_up(record.at_us)
        open_window.causes[record.result] += 1
    return windows


def changes(records: Iterable[WatchRecord]) -> tuple[int, int]:
    """(front changed, back changed): requests whose front (back) source port differs from
    the same client's previous request that had one."""
    front: dict[int, int] = {}
    back: dict[int, int] = {}
    front_changed = back_changed = 0
    for record in records:
        for port, last, count_front in ((record.front_port, front, True),
                                        (record.back_port, back, False)):
            if port == NONE:
                continue
            previous = last.get(record.client)
            if previous is not None and previous != port:
                if count_front:
                    front_changed += 1
                else:
                    back_changed += 1
            last[record.client] = port
    return front_changed, back_changed


def backends_over_time(records: Iterable[WatchRecord], start_us: int,
                       bucket_s: float = BUCKET_S) -> list[dict[str, Any]]:
    """Per bucket of ``bucket_s`` seconds: the requests each backend answered."""
    buckets: dict[int, Counter[int]] = {}
    for record in records:
        if record.backend != NONE:
            index = int((record.at_us - start_us) / 1e6 / bucket_s)
            buckets.setdefault(index, Counter())[record.backend] += 1
    return [{"from_s": round(i * bucket_s, 3),
             "backends": {str(b): n for b, n in sorted(buckets[i].items())}}
            for i in sorted(buckets)]


def report(records: list[WatchRecord], health: BackendHealth, start_us: int) -> dict[str, Any]:
    """The ``watch`` block's judged part: counts, windows, backends, verdicts."""
    windows = failure_windows(records, health)
    front_changed, back_changed = changes(records)
    failed = sum(w.count for w in windows)
    counted = sum(w.counted for w in windows)
    per_backend = Counter(r.backend for r in records if r.backend != NONE)
    first_seen: dict[str, int] = {}
    last_seen: dict[str, int] = {}
    for record in records:
        if record.backend != NONE:
            key = str(record.backend)
            first_seen.setdefault(key, record.at_us - start_us)
            last_seen[key] = record.at_us - start_us
    total = len(records)
    return {
        "requests": total, "ok": total - failed, "failed": failed,
        "failed_counted": counted, "failed_while_no_backend_up": failed - counted,
        "retried": sum(r.retried for r in records),
        "front_changed": front_changed, "back_changed": back_changed,
        "backends": {key: {"requests": per_backend[int(key)],
                           "share": round(per_backend[int(key)] / total, 4) if total else 0.0,
                           "first_us": first_seen[key], "last_us": last_seen[key]}
                     for key in sorted(first_seen, key=int)},
        "backends_over_time": backends_over_time(records, start_us),
        "failure_windows": [w.to_json(start_us) for w in windows[:MAX_WINDOWS]],
        "failure_windows_total": len(windows),
        "verdicts": [
            {"id": RECONF_FAIL, "severity": "HIGH", "status": "failed" if counted else "passed",
             "meaning": RECONF_MEANING, "failed_requests": counted},
            {"id": "keepalive_kept", "severity": "INFO",
             "status": "kept" if front_changed == 0 else "reconnected",
             "meaning": "keep-alive front connections kept for the whole watch "
                        "(informational: a proxy may close them on reload)",
             "front_changed": front_changed},
        ],
        "ok_verdict": counted == 0,
    }


def live_line(counters: Mapping[str, int]) -> str:
    """``ok 480  failed 2  front changed 1  back changed 37  | 0: 50%  1: 50%``."""
    ok, failed = counters.get(OK, 0), counters.get(FAILED, 0)
    shares = {int(k[len(BACKEND_PREFIX):]): v for k, v in counters.items()
              if k.startswith(BACKEND_PREFIX) and k[len(BACKEND_PREFIX):].isdigit()}
    answered = sum(shares.values())
    share_text = "  ".join(f"{b}: {100 * n / answered:.0f}%" for b, n in sorted(shares.items()))
    return (f"ok {ok}  failed {failed}  front changed {counters.get(FRONT_CHANGED, 0)}  "
            f"back changed {counters.get(BACK_CHANGED, 0)}"
            + (f"  | {share_text}" if share_text else ""))


def render(block: Mapping[str, Any]) -> list[str]:
    lines = [f"  requests       {block.get('requests', 0)} ({block.get('ok', 0)} ok, "
             f"{block.get('failed', 0)} failed, {block.get('failed_counted', 0)} while a "
             f"backend was up; {block.get('retried', 0)} retried)",
             f"  changed        front {block.get('front_changed', 0)}, back "
             f"{block.get('back_changed', 0)}"]
    for backend, seen in block.get("backends", {}).items():
        lines.append(f"  backend {backend:<6} {seen['requests']} requests "
                     f"({100 * seen['share']:.1f}%), seen {seen['first_us'] / 1e6:.2f}"
                     f"-{seen['last_us'] / 1e6:.2f} s")
    for window in block.get("failure_windows", []):
        causes = ", ".join(f"{c} x{n}" for c, n in window["causes"].items())
        lines.append(f"  failures       {window['start_us'] / 1e6:.3f}-"
                     f"{window['end_us'] / 1e6:.3f} s: {window['count']} ({causes})")
    for verdict in block.get("verdicts", []):
        lines.append(f"  {verdict['status'].upper():<6} {verdict['id']} "
                     f"[{verdict['severity']}] {verdict['meaning']}")
    return lines
