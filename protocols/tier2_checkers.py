"""Tier 2 checkers: invariants judged over one executed request sequence.

How this works: ``check`` walks the exchanges of a sequence once, keeping the resources a
DELETE removed (200/204 only: a 202 "has not yet been enacted", RFC 9110 §15.3.3), the
resources in a terminal state, and every list snapshot, and asks each checker about each
exchange. Every finding names its invariant, severity, operation, status and the step that
shows it; ``bucket`` is what makes one bug found a hundred times one report. Each
invariant quotes the text that makes the reaction wrong, and every reaction the text allows
passes: a second DELETE may answer 2xx (DELETE is idempotent, RFC 9110 §9.2.2, and the
response to a repeat need not say 404), a 4xx the spec documents for that operation is the
server's choice, and ``format`` mismatches are no schema finding (see tier2_schema).
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.openapi_operations import Operation
from protocols.outcome import Severity
from protocols.tier2_graph import CREATE, DELETE, LIST, READ, UPDATE, Graph
from protocols.tier2_schema import violations
from protocols.tier2_sequences import Exchange


@dataclass(frozen=True)
class Invariant:
    id: str
    severity: Severity
    meaning: str
    #: The sentence(s) the verdict rests on, with their source.
    basis: str


I_5XX = Invariant(
    "I-API-5XX", Severity.HIGH, "a request was answered with a 5xx status",
    "RFC 9110 §15.6: \"The 5xx (Server Error) class of status code indicates that the "
    "server is aware that it has erred or is incapable of performing the requested method.\"")
I_USE_AFTER_DELETE = Invariant(
    "I-API-USE-AFTER-DELETE", Severity.HIGH,
    "a resource was read or updated successfully after its DELETE succeeded",
    "RFC 9110 §9.3.5: \"The DELETE method requests that the origin server remove the "
    "association between the target resource and its current functionality.\" A 200/204 "
    "says it was done (§9.3.5: 204 \"if the action has been enacted\").")
I_DOUBLE_DELETE = Invariant(
    "I-API-DOUBLE-DELETE", Severity.HIGH,
    "a second DELETE of a deleted resource was answered other than 2xx/404/410",
    "RFC 9110 §15.5.5: 404 \"the origin server did not find a current representation for "
    "the target resource\"; §15.5.11: 410 \"access to the target resource is no longer "
    "available at the origin server\"; §9.2.2: DELETE is idempotent, so a 2xx is allowed too.")
I_DEPENDENT_LEAK = Invariant(
    "I-API-DEPENDENT-LEAK", Severity.HIGH,
    "a child resource was still reachable after its parent was deleted",
    "RFC 9110 §9.3.5 (DELETE removes the association between the target resource and its "
    "functionality): a path through a deleted parent names no current resource.")
I_INVALID_ACCEPTED = Invariant(
    "I-API-INVALID-ACCEPTED", Severity.MED,
    "a request body the spec's schema forbids was answered 2xx",
    "OpenAPI 3.0.3 §4.7.13 (Request Body Object) content: \"The content of the request "
    "body\" is described by the Media Type Object's schema; RFC 9110 §15.5.1: 400 for "
    "\"something that is perceived to be a client error (e.g., malformed request syntax\".")
I_INVALID_SIDE_EFFECT = Invariant(
    "I-API-INVALID-SIDE-EFFECT", Severity.HIGH,
    "a request rejected with 4xx still changed state (seen in a later list)",
    "RFC 9110 §15.5.21: 422 \"the server understands the content type of the request "
    "content ... but it was unable to process the contained instructions\"; §15.5.1: 400 "
    "\"the server cannot or will not process the request\".")
I_SCHEMA = Invariant(
    "I-API-SCHEMA", Severity.MED,
    "a documented response's JSON body does not match its documented schema",
    "OpenAPI 3.0.3 §4.7.14 (Media Type Object): \"schema: The schema defining the content "
    "of the request, response, or parameter.\"")
I_TERMINAL_REOPENED = Invariant(
    "I-API-TERMINAL-REOPENED", Severity.MED,
    "a resource left a state the spec documents as terminal",
    "The override file's [[terminal]] entry, quoting the API's own documentation of the "
    "state machine: a terminal state has no outgoing transition.")
I_STALE_ID = Invariant(
    "I-API-STALE-ID", Severity.MED,
    "a deleted resource's identifier was issued again to a new resource",
    "RFC 9110 §15.5.11: 410 \"this condition is likely to be permanent\"; a reissued id "
    "makes every stale reference to the deleted resource reach a different one.")

INVARIANTS = (I_5XX, I_USE_AFTER_DELETE, I_DOUBLE_DELETE, I_DEPENDENT_LEAK,
              I_INVALID_ACCEPTED, I_INVALID_SIDE_EFFECT, I_SCHEMA, I_TERMINAL_REOPENED,
              I_STALE_ID)
BY_ID = {inv.id: inv for inv in INVARIANTS}
_DELETED = (200, 204)
#: 4xx codes about the client's credentials or pace, not the resource's state: a repeat
#: DELETE refused with one says nothing about how the first was handled (RFC 6585 §4:
#: 429 "the user has sent too many requests in a given amount of time"; RFC 9110 §15.5.2
#: 401, §15.5.4 403, §15.5.8 407, §15.5.9 408 "did not receive a complete request").
_NOT_ABOUT_STATE = (401, 403, 407, 408, 429)


@dataclass(frozen=True)
class Finding:
    invariant: Invariant
    op_id: str
    status: int
    #: Index of the exchange that shows it.
    step: int
    detail: str

    @property
    def bucket(self) -> str:
        """Same checker, operation and status class: the same bug, counted once."""
        return f"{self.invariant.id}:{self.op_id}:{self.status // 100}xx"


def check(exchanges: list[Exchange], ops: dict[str, Operation], graph: Graph) -> list[Finding]:
    """Every invariant over one executed sequence; at most one finding per exchange."""
    deleted: dict[tuple[str, str], int] = {}
    terminal_seen: dict[tuple[str, str], object] = {}
    findings: list[Finding] = []
    for ex in exchanges:
        op = ops[ex.step.op_id]
        found = (_double_delete(ex, op, deleted) or _use_after_delete(ex, deleted)
                 or _dependent_leak(ex, deleted) or _stale_id(ex, deleted)
                 or _invalid(ex, exchanges) or _five_xx(ex)
                 or _terminal(ex, graph, terminal_seen) or _schema(ex, op))
        if found is not None:
            findings.append(found)
        if ex.role == DELETE and ex.status in _DELETED and ex.addressed:
            deleted.setdefault(ex.addressed[-1], ex.index)
        elif ex.role == UPDATE and ex.ok and ex.addressed and found is None:
            deleted.pop(ex.addressed[-1], None)  # re-created by PUT (201) or PATCH
    return findings


def _finding(inv: Invariant, ex: Exchange, detail: str) -> Finding:
    return Finding(inv, ex.step.op_id, ex.status, ex.index, f"{ex.summary()}: {detail}")


def _five_xx(ex: Exchange) -> Finding | None:
    return _finding(I_5XX, ex, "server error") if ex.status >= 500 else None


def _double_delete(ex: Exchange, op: Operation, deleted: dict) -> Finding | None:
    if ex.role != DELETE or not ex.addressed or ex.addressed[-1] not in deleted:
        return None
    if ex.ok or ex.status in (404, 410):
        return None
    if 400 <= ex.status < 500 and (op.documents(ex.status) or ex.status in _NOT_ABOUT_STATE):
        return None
    return _finding(I_DOUBLE_DELETE, ex,
                    f"already deleted at step {deleted[ex.addressed[-1]]}")


def _use_after_delete(ex: Exchange, deleted: dict) -> Finding | None:
    """A GET 2xx, or a PUT answered 200/204, on a deleted resource. A PUT may re-create
    it, but then "the origin server MUST inform the user agent by sending a 201 (Created)
    response" (RFC 9110 §9.3.4); a PATCH may create one with any 2xx (RFC 5789 §2), so a
    PATCH is never judged here."""
    if not ex.ok or not ex.addressed or ex.addressed[-1] not in deleted:
        return None
    if ex.role == READ or (ex.role == UPDATE and ex.method == "PUT" and ex.status != 201):
        return _finding(I_USE_AFTER_DELETE, ex,
                        f"deleted at step {deleted[ex.addressed[-1]]}, still {ex.role}able")
    return None


def _dependent_leak(ex: Exchange, deleted: dict) -> Finding | None:
    if ex.role not in (READ, UPDATE, LIST) or not ex.ok:
        return None
    if ex.role == LIST and not (ex.listed and ex.listed[1]):
        return None  # an empty list under a deleted parent shows no child to reach
    for ancestor in ex.addressed[:-1] if ex.role != LIST else ex.addressed:
        if ancestor in deleted:
            return _finding(I_DEPENDENT_LEAK, ex, f"parent {ancestor[0]} {ancestor[1]} "
                            f"deleted at step {deleted[ancestor]}")
    return None


def _stale_id(ex: Exchange, deleted: dict) -> Finding | None:
    """A server-chosen id handed out again. An id the request body named (a natural key:
    ``{"key": "theme"}`` created as ``theme``) names the same thing again by the client's
    choice, as a PUT re-creating a deleted resource does (RFC 9110 §9.3.4)."""
    if ex.role == CREATE and ex.created and ex.created in deleted \
            and ex.created[1] not in _body_values(ex.step.body):
        return _finding(I_STALE_ID, ex, f"id {ex.created[1]} was deleted at step "
                        f"{deleted[ex.created]}")
    return None


def _body_values(body: object) -> set[str]:
    if not isinstance(body, dict):
        return set()
    return {str(v) for v in body.values() if isinstance(v, (str, int)) and
            not isinstance(v, bool)}


def _invalid(ex: Exchange, exchanges: list[Exchange]) -> Finding | None:
    if not ex.step.payload.startswith("invalid:"):
        return None
    if ex.ok:
        return _finding(I_INVALID_ACCEPTED, ex, f"{ex.step.payload} body accepted")
    if not 400 <= ex.status < 500:
        return None
    resource = ex.addressed[-1][0] if ex.addressed else None
    before = next((e for e in reversed(exchanges[:ex.index]) if e.listed), None)
    after = next((e for e in exchanges[ex.index + 1:] if e.listed), None)
    if before is None or after is None or before.listed is None or after.listed is None:
        return None
    if before.listed[0] != after.listed[0] or (resource and resource != before.listed[0]):
        return None
    if not before.listed[1] <= after.listed[1]:
        # An id listed before is missing after: the list is a window (a page in no
        # documented order), so a "new" id may be an old one the window now shows.
        return None
    made = {e.created[1] for e in exchanges[before.index:after.index] if e.created}
    appeared = after.listed[1] - before.listed[1] - made
    if ex.role == CREATE and appeared:
        return _finding(I_INVALID_SIDE_EFFECT, ex, f"{ex.step.payload} body rejected, yet "
                        f"{len(appeared)} new {after.listed[0]} listed afterwards")
    return None


def _terminal(ex: Exchange, graph: Graph, seen: dict) -> Finding | None:
    resource = graph.resources.get(ex.step.op_id, "")
    rule = graph.terminal.get(resource)
    if rule is None or not ex.ok or not isinstance(ex.body, dict) or rule[0] not in ex.body:
        return None
    key = ex.created or (ex.addressed[-1] if ex.addressed else None)
    if key is None:
        return None
    value = ex.body[rule[0]]
    if value in rule[1]:
        seen.setdefault(key, value)
        return None
    if key in seen:
        return _finding(I_TERMINAL_REOPENED, ex,
                        f"{rule[0]} went from terminal {seen[key]!r} to {value!r}")
    return None


def _schema(ex: Exchange, op: Operation) -> Finding | None:
    documented, schema = op.response_schema(ex.status)
    if not documented or schema is None or not ex.is_json \
            or not op.schema_applies(ex.status, ex.content_type):
        return None
    problems = violations(ex.body, schema, "response")
    if problems:
        return _finding(I_SCHEMA, ex, "; ".join(problems[:3]))
    return None
