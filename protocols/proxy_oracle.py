"""``assay proxy``: judge what the backends received against what assay sent.

How this works: the inputs are, per case, the bytes assay sent to the proxy and the bytes
it got back, and every record (``protocols.backend_echo.Record``) the backends kept that
carries this run's marker. Three invariants:

* I-PROXY-DESYNC (HIGH): a backend received a request to an ``assay-smuggled`` target
  (one assay hid in a body: under every framing RFC 9112 allows it is body bytes or part
  of a message the server must reject or close after), or a client got back the answer
  to a request other than its own.
* I-PROXY-REWRITE (HIGH): the end-to-end case arrived with its body changed. The case
  carries ``Cache-Control: no-transform``, and RFC 9110 §7.7: "A proxy MUST NOT transform
  the content (Section 6.4) of a message that contains a no-transform cache directive".
  (Without it a proxy MAY transform the content: so the directive is always sent.)
* I-PROXY-ALTERED (MEDIUM): the end-to-end case arrived with its target or an end-to-end
  field changed. RFC 9110 §7.7 only says a proxy "SHOULD NOT modify header fields that
  provide information about the endpoints of the communication chain, the resource state,
  or the selected representation", and a gateway may map the target to its own origin
  (§3.7, a prefix stripped by configuration): reported, never a failed run. What RFC 9110
  §7.6 lets an intermediary change is not compared at all: hop-by-hop fields, ``Host`` (a
  gateway makes its own request), ``Via``, ``Forwarded``/``X-Forwarded-*``/``X-Real-IP``,
  and the framing fields (``Content-Length``/``Transfer-Encoding``) as long as the body is
  the same.
* I-PROXY-HOP (MEDIUM): a field named in ``Connection`` was forwarded (RFC 9110 §7.6.1).

Evidence is the bytes on both sides: sent (latin-1 text), and the backend's record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from protocols.backend_echo import Record
from protocols.proxy_cases import (
    E2E_FIELDS,
    HOP_FIELD,
    REWRITE_BODY,
    SMUGGLED_PREFIX,
    ProxyCase,
    own_target,
)
from protocols.proxy_catalogue import ALL_CASES

DESYNC = "I-PROXY-DESYNC"
REWRITE = "I-PROXY-REWRITE"
ALTERED = "I-PROXY-ALTERED"
HOP = "I-PROXY-HOP"
SEVERITY = {DESYNC: "HIGH", REWRITE: "HIGH", ALTERED: "MEDIUM", HOP: "MEDIUM"}
MEANING = {
    DESYNC: "the proxy and a backend disagreed on where a request ends: a hidden request "
            "reached a backend, or a client got another request's answer",
    REWRITE: "a request carrying Cache-Control: no-transform arrived with its body changed "
             "(RFC 9110 §7.7)",
    ALTERED: "a request arrived with its target or an end-to-end field changed (RFC 9110 "
             "§7.7: SHOULD NOT; reported, the run still passes)",
    HOP: "a field named in Connection was forwarded (RFC 9110 §7.6.1)",
}


@dataclass(frozen=True)
class Sent:
    """One case as the walker ran it."""

    case: str
    sent: bytes
    received: bytes
    error: str = ""


@dataclass(frozen=True)
class Arrived:
    """One backend record, parsed: request line target and fields."""

    backend: int
    record: Record
    target: str
    fields: tuple[tuple[str, str], ...]
    body: bytes


@dataclass
class Finding:
    invariant: str
    case: str
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"invariant": self.invariant, "severity": SEVERITY[self.invariant],
                "case": self.case, "detail": self.detail, **self.evidence}


def parse_record(backend: int, record: Record) -> Arrived | None:
    head, sep, body = record.raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if not sep or len(parts) != 3:
        return None
    fields = tuple((name.strip(), value.strip()) for name, _, value in
                   (line.partition(":") for line in lines[1:]))
    return Arrived(backend, record, parts[1], fields, body)


def dechunk(body: bytes) -> bytes | None:
    """A chunked body's content (RFC 9112 §7.1), or None when it is not well formed."""
    out = b""
    while True:
        line, sep, rest = body.partition(b"\r\n")
        try:
            size = int(line.split(b";")[0], 16)
        except ValueError:
            return None
        if not sep:
            return None
        if size == 0:
            return out
        out, body = out + rest[:size], rest[size + 2:]


def _value(fields: Iterable[tuple[str, str]], name: str) -> list[str]:
    return [v for n, v in fields if n.lower() == name.lower()]


def answered_targets(received: bytes) -> list[str]:
    """The ``target`` of every backend JSON answer in the bytes a client got back."""
    targets, decoder, at = [], json.JSONDecoder(), 0
    text = received.decode("latin-1")
    while (at := text.find('{"backend":', at)) >= 0:
        try:
            document, end = decoder.raw_decode(text, at)
        except ValueError:
            at += 1
            continue
        targets.append(str(document.get("target", "")))
        at = end
    return targets


def _evidence(sent: Sent, arrived: Arrived | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"sent": sent.sent.decode("latin-1"),
                           "client_received": sent.received[:4096].decode("latin-1")}
    if arrived is not None:
        out.update(backend=arrived.backend, backend_received=arrived.record.to_json()["raw"])
    return out


def judge(run: str, sent: list[Sent], arrived: list[Arrived]) -> list[Finding]:
    by_case = {s.case: s for s in sent}
    cases = {c.name: c for c in ALL_CASES}
    findings: list[Finding] = []
    for item in arrived:
        if item.target.startswith(f"{SMUGGLED_PREFIX}/{run}/"):
            case = item.target.rsplit("/", 1)[1]
            if case in by_case:
                findings.append(Finding(DESYNC, case, f"a backend received {item.target}, "
                                        "a request hidden in the body", _evidence(
                                            by_case[case], item)))
    for item in sent:
        case = cases.get(item.case)
        if case is None:  # a shard line from another version of the cases: not judged
            continue
        own = own_target(run, case.name)
        for target in answered_targets(item.received):
            if target.split("?")[0] != own and not target.startswith(SMUGGLED_PREFIX):
                findings.append(Finding(DESYNC, case.name, f"the client got the answer to "
                                        f"{target}, not its own", _evidence(item)))
        mine = [a for a in arrived if a.target.split("?")[0] == own]
        for one in mine:
            findings.extend(_compare(case, item, one))
    return findings


def _compare(case: ProxyCase, sent: Sent, arrived: Arrived) -> list[Finding]:
    out: list[Finding] = []
    if case.hop:
        hop_names = [n for n, _ in arrived.fields if n.lower() == HOP_FIELD.lower()]
        if hop_names:
            out.append(Finding(HOP, case.name, f"{HOP_FIELD}, named in Connection, was "
                               "forwarded", _evidence(sent, arrived)))
    if case.compares:
        sent_target = sent.sent.split(b" ", 2)[1].decode("latin-1")
        problems = []
        if arrived.target != sent_target:
            problems.append(f"target {sent_target!r} arrived as {arrived.target!r}")
        for name, value in E2E_FIELDS:
            got = _value(arrived.fields, name)
            if got != [value]:
                problems.append(f"{name}: {value!r} arrived as {got!r}")
        chunked = any("chunked" in v.lower() for v in
                      _value(arrived.fields, "Transfer-Encoding"))
        body = dechunk(arrived.body) if chunked else arrived.body
        if body != REWRITE_BODY:
            out.append(Finding(REWRITE, case.name, f"body {REWRITE_BODY!r} arrived as "
                               f"{body!r}", _evidence(sent, arrived)))
        if problems:
            out.append(Finding(ALTERED, case.name, "; ".join(problems), _evidence(sent, arrived)))
    return out


def verdicts(findings: list[Finding]) -> list[dict[str, Any]]:
    return [{"id": inv, "severity": SEVERITY[inv], "meaning": MEANING[inv],
             "status": "failed" if any(f.invariant == inv for f in findings) else "passed",
             "findings": sum(f.invariant == inv for f in findings)}
            for inv in (DESYNC, REWRITE, ALTERED, HOP)]


def failed_high(findings: list[Finding]) -> bool:
    return any(SEVERITY[f.invariant] == "HIGH" for f in findings)
