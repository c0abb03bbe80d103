"""Who killed the target: rank what was in flight when it died, and tell causes from echoes.

How this works: when the coordinator sees the target die (I-LIVENESS) or hang (I-HANG) it
asks every actor for its walkers' flight rings (``actors.flight``): per case, the bytes
written with their wall-clock send times, and when an answer was last read. ``rank`` turns
those reports into candidates, most suspect first:

1. ``estimate_death`` puts the death at the last sign of life any walker saw (the latest
   answer read), never later than when the coordinator noticed: the target was alive then,
   and whatever killed it had been sent by then or moments after;
2. a case whose first write came more than ``AFTER_SLACK_S`` after that estimate is not a
   candidate (what is sent to a dead target cannot have killed it);
3. tiers (``tier_of``): a case is suspect when it got no answer after its last write and
   the target never survived it before (answered it, or answered anything
   ``SURVIVE_MARGIN_S`` after one of its sends: a deterministic killer never lets that
   happen). Suspects come first by ``suspicion``: malformed input (the adversarial and
   WebSocket catalogues, the classic crash trigger), then abrupt but well-formed client
   behaviour (h2c churn, SSE kills), then valid traffic (Markov requests, baselines,
   survival probes); then unanswered cases the target survived before (ordinary traffic
   cut off by the death); answered ones last;
4. within a tier, cases whose connection the target closed at the death (``cut_by_death``:
   in flight at that moment) first, then by how close the last write came to the death
   estimate; a last write more than ``NEAR_AFTER_S`` after the estimate ranks after all
   the others (sent to a target that was probably dead already).

The ranking is a heuristic over concurrent traffic (several cases are always in flight),
which is why the shrink step (``replay.crash_shrink``) replays candidates one by one against
a fresh target before anything is called a reproducer.

Consequences: a slice's own trip (``h2c.crashed``, ``ws.hang_no_close``, ``sse.*``,
``markov.errors``) that coincides with a death is what the death looked like from that
slice, not a second defect. ``consequence_of`` decides that from the outages the
coordinator saw; ``annotate_invariants`` marks the verdicts in the results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

#: A case first sent this long after the death estimate still counts (clock skew between
#: the load host's processes is nil, but the estimate is a lower bound on the death).
AFTER_SLACK_S = 0.5
#: A last write this close after the death estimate ranks with those before it (the last
#: answer read and the killer's send can cross); later ones rank after every earlier one.
NEAR_AFTER_S = 0.002
#: A connection the target closed or reset this close to the death estimate (or later) was
#: cut off by the death: the case was in flight at the moment of death.
CUT_WINDOW_S = 0.002
#: A case survived when the target answered anything this long after its last write (a
#: killer never does; a crash that takes longer than this to happen is ranked by time alone).
SURVIVE_MARGIN_S = 0.25
#: How far back the coordinator asks the actors to look before it noticed the death (the
#: health monitor needs 3 probes a second apart, 3 s each when they time out).
LOOKBACK_S = 15.0
#: A slice trip seen this long before a death was noticed, or while the target was down,
#: is a consequence of that death.
COINCIDENCE_WINDOW_S = 5.0
#: Candidates kept in ``candidates.json``; the incident shows the first few.
MAX_CANDIDATES = 20
SHOWN_CANDIDATES = 5
#: Bytes of each write shown in a candidate's one-line summary.
SUMMARY_BYTES = 60

#: Health counter of a death -> the invariant it trips.
DEATH_COUNTERS: dict[str, str] = {"coord.target_down": "I-LIVENESS",
                                  "coord.target_hung": "I-HANG"}
DEATH_KINDS: dict[str, str] = {"I-LIVENESS": "liveness", "I-HANG": "hang"}
#: Slice counters whose trip a dead or hung target produces by itself.
CONSEQUENCE_COUNTERS = frozenset({"h2c.crashed", "ws.hang_no_close", "markov.errors"})
CONSEQUENCE_SLICES = frozenset({"sse"})
#: Invariants (by id) that are a slice's view of a death when one was seen.
CONSEQUENCE_INVARIANTS: dict[str, str] = {
    "I-H2C-CRASHED": "h2c.crashed", "I-WS-HANG": "ws.hang_no_close",
    "I-SSE-LEAK": "sse.leak", "I-MKV-TRANSPORT": "markov.errors",
}


@dataclass(frozen=True)
class Sent:
    """One case a walker sent: the entry of an actor's flight report."""

    actor: int
    walker: int
    slice: str
    case: str
    #: Wall-clock time of the first and the last write.
    sent_at: float
    last_sent_at: float
    #: When an answer was last read (None: never).
    answered_at: float | None
    writes: tuple[bytes, ...]
    #: Per write, which of the case's connections carried it (0, 1, ...).
    conns: tuple[int, ...] = ()
    #: How the walker saw it end, when it knows (``reset``, ``timeout``, ...).
    ending: str | None = None
    #: How the walker hung up: ``close`` (FIN) or ``rst``.
    end: str = "close"
    #: When a read found the connection closed or reset by the target.
    closed_at: float | None = None

    @property
    def answered(self) -> bool:
        """An answer came after the last write (the server survived what we sent)."""
        return self.answered_at is not None and self.answered_at >= self.last_sent_at

    @classmethod
    def from_wire(cls, actor: int, raw: Any) -> Sent | None:
        """Validate one report entry; None for anything malformed (an actor's bug must
        not take the incident down)."""
        if not isinstance(raw, Mapping):
            return None
        try:
            sent_at = float(raw["sent_at"])
            last = float(raw.get("last_sent_at", sent_at))
            answered = raw.get("answered_at")
            writes = tuple(bytes(w) for w in raw.get("writes", ()) if isinstance(w, bytes))
            conns = tuple(int(c) for c in raw.get("conns", ()))
            ending = raw.get("ending")
            end = "rst" if raw.get("end") == "rst" else "close"
            closed = raw.get("closed_at")
            return cls(actor=int(actor), walker=int(raw["walker"]), slice=str(raw["slice"]),
                       case=str(raw["case"]), sent_at=sent_at, last_sent_at=last,
                       answered_at=None if answered is None else float(answered),
                       writes=writes, conns=conns,
                       ending=ending if isinstance(ending, str) else None, end=end,
                       closed_at=None if closed is None else float(closed))
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def key(self) -> str:
        return case_key(self.slice, self.case)

    def replay_writes(self) -> tuple[bytes, ...]:
        """The writes of the connection that carried the last write, in order: what a
        reproducer sends on one connection. (A case's other connections are its baseline
        or a survival probe, sent before the case or refused after the death.)"""
        if not self.conns or len(self.conns) != len(self.writes):
            return self.writes
        last = self.conns[-1]
        return tuple(w for w, c in zip(self.writes, self.conns, strict=True) if c == last)


def case_key(slice_name: str, case: str) -> str:
    """How a case is named across walkers: ``slice/case``."""
    return f"{slice_name}/{case}"


@dataclass(frozen=True)
class Candidate:
    rank: int
    sent: Sent
    tier: int
    #: death estimate - last write, seconds (negative: written after the estimate).
    before_death_s: float
    #: The target closed the case's connection at the death (``cut_by_death``).
    cut: bool = False

    def to_json(self) -> dict[str, Any]:
        """The entry format agreed with ``replay.crash_shrink`` (candidates.json)."""
        sent = self.sent
        return {
            "rank": self.rank, "actor": sent.actor, "walker": sent.walker,
            "slice": sent.slice, "case": sent.case, "sent_at": sent.sent_at,
            "writes": [w.decode("latin-1") for w in sent.replay_writes()],
            "end": sent.end, "summary": summarize(self),
            "all_writes": len(sent.writes),
            "tier": self.tier, "last_sent_at": sent.last_sent_at,
            "answered": sent.answered, "answered_at": sent.answered_at,
            "before_death_s": round(self.before_death_s, 6),
            "conns": list(sent.conns), "ending": sent.ending, "cut_by_death": self.cut,
        }


_NEVER = "no answer after its last write, and the target never survived it before"
TIER_MEANING = {0: f"malformed input, {_NEVER}",
                1: f"abrupt client behaviour, {_NEVER}",
                2: f"valid traffic, {_NEVER}",
                3: "no answer after its last write, but the target survived the same case "
                   "earlier",
                4: "answered after its last write"}


def summarize(candidate: Candidate) -> str:
    sent = candidate.sent
    size = sum(len(w) for w in sent.writes)
    head = sent.writes[-1][:SUMMARY_BYTES] if sent.writes else b""
    when = candidate.before_death_s
    timing = (f"last write {when * 1000:.1f} ms before the death estimate" if when >= 0 else
              f"last write {-when * 1000:.1f} ms after the death estimate")
    return (f"{sent.slice} {sent.case}: {len(sent.writes)} write(s), {size} bytes, {timing}; "
            f"{TIER_MEANING[candidate.tier]}; last write starts {head!r}")


def estimate_death(entries: Iterable[Sent], noticed_at: float,
                   last_ok_probe: float | None = None) -> float:
    """The latest sign of life (an answer read, a health probe answered), capped at when
    the death was noticed; ``noticed_at`` when nothing was ever answered."""
    alive = [e.answered_at for e in entries
             if e.answered_at is not None and e.answered_at <= noticed_at]
    if last_ok_probe is not None and last_ok_probe <= noticed_at:
        alive.append(last_ok_probe)
    return max(alive) if alive else noticed_at


def survived_cases(entries: Sequence[Sent], extra: Iterable[str] = (),
                   last_ok_probe: float | None = None) -> set[str]:
    """Case keys the target lived through at least once: something (any walker, or the
    health probe) was answered ``SURVIVE_MARGIN_S`` after one of their sends; plus the
    keys the actors settled themselves (``extra``)."""
    answers = [e.answered_at for e in entries if e.answered_at is not None]
    if last_ok_probe is not None:
        answers.append(last_ok_probe)
    latest = max(answers, default=None)
    found = set(extra) | {e.key for e in entries if e.answered}
    if latest is not None:
        found.update(e.key for e in entries if e.last_sent_at + SURVIVE_MARGIN_S < latest)
    return found


#: Valid traffic: Markov requests, and the plain requests other slices send around their
#: cases (an adversarial baseline, an h2c survival probe, an SSE leak check's subscription).
VALID_CASES = frozenset({"baseline", "survival_probe", "leak_check"})
#: Slices whose cases are malformed or protocol-violating bytes (RFC 9112 / RFC 6455
#: catalogues): the classic crash trigger, so suspect first. The others (h2c churn, SSE
#: kills) send well-formed requests and misbehave only in how they leave.
MALFORMED_SLICES = frozenset({"adv", "ws"})


def suspicion(entry: Sent) -> int:
    """0: malformed input, 1: abrupt but well-formed client behaviour, 2: valid traffic."""
    if entry.slice == "markov" or entry.case in VALID_CASES:
        return 2
    return 0 if entry.slice in MALFORMED_SLICES else 1


def tier_of(entry: Sent, survived: set[str]) -> int:
    """0-2: no answer after the last write and never survived, by ``suspicion``; 3:
    unanswered but the target survived the same case before; 4: answered after its last
    write."""
    if entry.answered:
        return 4
    if entry.key in survived:
        return 3
    return suspicion(entry)


def cut_by_death(entry: Sent, death_at: float) -> bool:
    """The target closed or reset the case's connection at (or after) the death: it was
    still in flight then. (A case that left by itself may still be the killer; this only
    orders cases within a tier.)"""
    return entry.closed_at is not None and entry.closed_at >= death_at - CUT_WINDOW_S


def rank(entries: Sequence[Sent], death_at: float, survived: set[str],
         limit: int = MAX_CANDIDATES) -> list[Candidate]:
    """Candidates, most suspect first (see the module docstring)."""
    eligible = [e for e in entries if e.writes and e.sent_at <= death_at + AFTER_SLACK_S]

    def key(entry: Sent) -> tuple[bool, int, bool, float, int, int]:
        late = entry.last_sent_at > death_at + NEAR_AFTER_S
        return (late, tier_of(entry, survived), not cut_by_death(entry, death_at),
                abs(death_at - entry.last_sent_at), entry.actor, entry.walker)

    ordered = sorted(eligible, key=key)
    return [Candidate(number, entry, tier_of(entry, survived), death_at - entry.last_sent_at,
                      cut_by_death(entry, death_at))
            for number, entry in enumerate(ordered[:limit], start=1)]


def candidates_document(death_at: float, kind: str,
                        candidates: Sequence[Candidate]) -> dict[str, Any]:
    """``candidates.json``: ``{"death_at", "kind", "candidates": [...]}``."""
    return {"death_at": death_at, "kind": kind,
            "candidates": [c.to_json() for c in candidates]}


def shown(candidates: Sequence[Candidate], count: int = SHOWN_CANDIDATES) -> list[dict]:
    """The short form for incident.json and the results: no bytes, the summary instead."""
    return [{"rank": c.rank, "actor": c.sent.actor, "walker": c.sent.walker,
             "slice": c.sent.slice, "case": c.sent.case, "sent_at": c.sent.sent_at,
             "tier": c.tier, "summary": summarize(c)} for c in candidates[:count]]


# -- consequences ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Outage:
    """A death the coordinator saw: the invariant, when it began and (if) it ended."""

    invariant: str
    noticed_at: float
    ended_at: float | None = None


def is_consequence_counter(counter: str) -> bool:
    """A slice counter a dead or hung target trips by itself."""
    return counter in CONSEQUENCE_COUNTERS or counter.split(".", 1)[0] in CONSEQUENCE_SLICES


def coincides(at: float, outage: Outage, window_s: float = COINCIDENCE_WINDOW_S) -> bool:
    """Seen within ``window_s`` before the death was noticed, or while the target was down."""
    end = outage.ended_at
    return outage.noticed_at - window_s <= at and (end is None or at <= end + window_s)


def consequence_of(counter: str, at: float, outages: Iterable[Outage],
                   window_s: float = COINCIDENCE_WINDOW_S) -> str | None:
    """The death invariant a slice trip seen at ``at`` is a consequence of, or None."""
    if not is_consequence_counter(counter):
        return None
    for outage in outages:
        if coincides(at, outage, window_s):
            return outage.invariant
    return None


def death_from_probe(status: str) -> str | None:
    """What one health probe's status says right now: refused or broken -> the target is
    dead (I-LIVENESS), timeout -> hung (I-HANG), answered -> None."""
    if status in ("refused", "broken"):
        return "I-LIVENESS"
    if status == "timeout":
        return "I-HANG"
    return None


def annotate_invariants(verdicts: Mapping[str, list[MutableMapping[str, Any]]],
                        trips: Mapping[str, Mapping[str, Any]]) -> None:
    """Mark failed slice invariants that a death explains with ``consequence_of``.

    A slice trip already classified at trip time keeps its classification; a ratio
    invariant (I-MKV-TRANSPORT) has no trip, so a failed death invariant explains it.
    """
    failed = verdicts.get("failed", [])
    deaths = [e["id"] for e in failed if e.get("id") in DEATH_KINDS]
    by_counter = {c: t.get("consequence_of") for c, t in trips.items()}
    for entry in failed:
        counter = CONSEQUENCE_INVARIANTS.get(entry.get("id", ""))
        if counter is None:
            continue
        cause = by_counter.get(counter)
        if cause is None and counter not in trips and deaths:
            cause = deaths[0]
        if cause:
            entry["consequence_of"] = cause
