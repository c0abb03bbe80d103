"""Workload segments: the Tier 1 slices' traffic as exact, replayable steps.

How this works: each builder takes the segment's PRNG and the profile and returns one
``Segment`` whose bytes come from the protocol catalogues (``protocols.adversarial_cases``,
``protocols.websocket_cases``, ``protocols.h2c``) and whose parameters tell the oracle
(``corpus.oracles``) what to expect. Everything random (which case, where to cut, mask keys,
nonces, item bodies) is drawn from the PRNG, so the segment depends only on the seed, the
generator version and the profile.

Cases are chosen from name lists pinned here, not from the live catalogues: a case added to a
catalogue must not silently change what an old seed sends. A pinned name that a catalogue
has dropped is a harness error that asks for a generator version bump.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from corpus.plan import Profile, Segment
from corpus.rng import SeedRng
from protocols import adversarial_cases, websocket_cases
from protocols.errors import HarnessError
from protocols.h2c import SETTINGS_ACK, TeardownStage, build_client_preface, build_upgrade_request
from protocols.program import Action, ReadUntil, Step
from protocols.sse import SseKillStage
from protocols.websocket_cases import CaseKind, HandshakeCase, WsCase
from protocols.websocket_frames import (
    Frame,
    Opcode,
    build_handshake,
    close_payload,
    encode_frames,
    make_key,
)
from protocols.websocket_oracle import CANARY_FRAME

#: Deadline for an answer to a valid request.
REQUEST_TIMEOUT_S = 5.0
#: Deadline for a reaction to an adversarial case; a hang costs this much.
CASE_TIMEOUT_S = 1.5
#: How long to keep reading after a complete response (close? surplus responses?).
GRACE_S = 0.25
#: Deadline for a WebSocket server's reaction to the frames of a case.
WS_TIMEOUT_S = 2.0
HOST = "{host}"

# Catalogue names this generator version draws from (slow-loris cases are excluded: the
# fault schedule has its own drip writes, and a 0.5 s-per-byte case would dominate a seed).
ADV_CASES = (
    "cl-conflicting", "cl-conflicting-list", "cl-duplicate-same", "cl-hex", "cl-plus-sign",
    "cl-negative", "cl-underscore", "cl-empty", "cl-overflow", "cl-te-aligned",
    "cl-te-smuggle", "te-cl-smuggle", "te-http10", "te-chunked-not-final", "te-gzip-only",
    "te-xchunked", "te-unknown-then-chunked", "te-chunked-twice", "te-duplicate-header",
    "ws-before-colon", "ws-before-colon-te", "leading-ws-line-te", "obs-fold", "obs-fold-te",
    "bare-cr-value-te", "bare-cr-request-line", "nul-in-value", "ctl-in-value",
    "bare-lf-line-ends", "invalid-field-name", "empty-field-name", "field-oversized",
    "fields-too-many", "host-missing", "host-duplicate", "host-invalid", "target-space",
    "target-ctl", "target-fragment", "target-too-long", "target-asterisk-get",
    "target-missing", "method-invalid-token", "sep-tab", "sep-double-space",
    "version-invalid", "version-lowercase", "version-multi-digit", "version-major-2",
    "version-minor-high", "http09", "chunk-size-hex-prefix", "chunk-size-invalid",
    "chunk-size-overflow", "chunk-data-overrun", "chunk-size-bare-lf", "chunk-data-bare-lf",
    "chunk-ext-invalid", "chunk-ext-bare-lf", "chunk-missing-last", "get-with-body",
    "garbage-after-request", "leading-crlf", "leading-crlf-many", "binary-junk",
    "tls-client-hello", "h2-prior-knowledge",
)
WS_CASES = (
    "unmasked_text", "unmasked_ping", "rsv1_text", "rsv2_text", "rsv3_text", "rsv123_text",
    "rsv1_ping", "reserved_opcode_3", "reserved_opcode_4", "reserved_opcode_5",
    "reserved_opcode_6", "reserved_opcode_7", "reserved_opcode_b", "reserved_opcode_c",
    "reserved_opcode_d", "reserved_opcode_e", "reserved_opcode_f", "ping_payload_126",
    "fragmented_ping", "continuation_without_start", "data_inside_fragmented_message",
    "invalid_utf8_text", "invalid_utf8_fragmented", "declared_length_2_53",
    "declared_length_msb_set", "close_code_0", "close_code_999", "close_code_1004",
    "close_code_1005", "close_code_1006", "close_code_1015", "close_code_1016",
    "close_code_1100", "close_code_2000", "close_code_2999", "close_code_5000",
    "close_code_65535", "close_reason_invalid_utf8", "client_close", "ping_flood",
    "ping_max_payload", "echo_text", "echo_binary", "echo_fragmented_split_codepoint",
    "handshake_missing_key", "handshake_wrong_version",
)

# The refapp-style session model, pinned: state -> (method, path, expected statuses, edges).
# It mirrors refapp/markov.yaml; editing that file must not move old seeds' bytes.
_REFAPP_STATES: dict[str, tuple[str, str, tuple[int, ...], tuple[tuple[str, int], ...]]] = {
    "list_items": ("GET", "/items", (200,),
                   (("create_item", 3), ("list_items", 1), ("read_item", 2))),
    "create_item": ("POST", "/items", (201,),
                    (("read_item", 3), ("update_item", 2), ("list_items", 1))),
    "read_item": ("GET", "/items/{item_id}", (200,),
                  (("update_item", 2), ("delete_item", 1), ("list_items", 1))),
    "update_item": ("PUT", "/items/{item_id}", (200,), (("read_item", 3), ("delete_item", 1))),
    "delete_item": ("DELETE", "/items/{item_id}", (204,),
                    (("list_items", 2), ("create_item", 1))),
}
_WRITES = {"create_item", "update_item"}
_TAGS = ("red", "green", "blue", "urgent", "bulk", "fragile", "seed", "tier3")


def _send(conn: int, data: bytes, **extra: Any) -> Step:
    return Step(Action.SEND, conn, data, template=HOST.encode() in data or b"{" in data,
                **extra)


def _read(conn: int, until: ReadUntil = ReadUntil.RESPONSE, timeout: float = REQUEST_TIMEOUT_S,
          **extra: Any) -> Step:
    return Step(Action.READ, conn, until=until, timeout_s=timeout, **extra)


def _request(method: str, path: str, headers: tuple[str, ...] = (),
             body: bytes | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", *headers]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def _json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


# -- markov ----------------------------------------------------------------------------------


def markov(rng: SeedRng, profile: Profile) -> Segment:
    """One keep-alive session: login and a CRUD walk (refapp model), or GETs of the path."""
    length = rng.between(3, 8)
    if profile.model == "get":
        steps: list[tuple[str, Step]] = []
        requests = []
        for i in range(length):
            steps.append((f"q{i}", _send(0, _request("GET", profile.path))))
            steps.append((f"r{i}", _read(0)))
            requests.append({"i": i, "state": "get", "method": "GET", "expect": "2xx3xx"})
        steps.append(("close", Step(Action.CLOSE, 0)))
        return Segment("markov", tuple(steps), {"model": "get", "requests": requests})
    user = f"seed-{rng.token(4).hex()}"
    login = _request("POST", "/login", body=_json({"username": user, "password": "secret"}))
    steps = [("login", _send(0, login)),
             ("login_reply", _read(0, capture=(("session", "cookie:session"),)))]
    requests = []
    state, bound = "list_items", False
    cookie = ("Cookie: session={session}", "Accept: application/json")
    for i in range(length):
        method, path, expect, _ = _REFAPP_STATES[state]
        body_doc = None
        if state in _WRITES:
            body_doc = {"name": f"item-{rng.token(3).hex()}", "quantity": rng.between(0, 1000),
                        "tags": [rng.choice(_TAGS) for _ in range(rng.between(0, 3))]}
        body = _json(body_doc) if body_doc is not None else None
        capture = (("item_id", "json:id"),) if state == "create_item" else ()
        steps.append((f"q{i}", _send(0, _request(method, path, cookie, body))))
        steps.append((f"r{i}", _read(0, capture=capture)))
        requests.append({"i": i, "state": state, "method": method, "expect": list(expect),
                         "write": body_doc, "read": state == "read_item",
                         "forget": state == "delete_item"})
        bound = (bound or state == "create_item") and state != "delete_item"
        edges = [(nxt, w) for nxt, w in _REFAPP_STATES[state][3]
                 if bound or "{item_id}" not in _REFAPP_STATES[nxt][1]]
        state = rng.weighted(edges) if edges else "list_items"
    steps.append(("close", Step(Action.CLOSE, 0)))
    return Segment("markov", tuple(steps), {"model": "refapp", "requests": requests})


# -- adversarial -----------------------------------------------------------------------------


def _pinned(table: Mapping[str, Any], name: str, catalogue: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise HarnessError(f"the {catalogue} catalogue no longer has case {name!r}, which this "
                           "generator version draws from: bump GENERATOR_VERSION") from None


def adversarial(rng: SeedRng, profile: Profile) -> Segment:
    """A malformed request with its valid baseline, then a canary on the same socket."""
    case = _pinned(adversarial_cases.BY_NAME, rng.choice(ADV_CASES), "adversarial")
    path = profile.path
    baseline = adversarial_cases.baseline_request(case.method, HOST, path)
    nonce = rng.token(6).hex()
    steps = [
        ("baseline", _send(0, baseline)),
        ("baseline_reply", _read(0, timeout=REQUEST_TIMEOUT_S)),
        ("baseline_close", Step(Action.CLOSE, 0)),
        ("case", _send(1, case.build(HOST, path))),
        ("reply", _read(1, timeout=CASE_TIMEOUT_S)),
        ("grace", _read(1, ReadUntil.CLOSE, timeout=GRACE_S)),
    ]
    if case.framing:
        canary = adversarial_cases.canary_request(HOST, path, nonce)
        steps += [("canary", _send(1, canary)),
                  ("canary_reply", _read(1, timeout=CASE_TIMEOUT_S)),
                  ("canary_grace", _read(1, ReadUntil.CLOSE, timeout=GRACE_S))]
    steps.append(("close", Step(Action.CLOSE, 1)))
    return Segment("adv", tuple(steps), {"case": case.name})


# -- h2c -------------------------------------------------------------------------------------


def h2c(rng: SeedRng, profile: Profile) -> Segment:
    """An h2c upgrade abandoned at a stage with FIN or RST, then a survival probe."""
    stage = rng.choice(list(TeardownStage))
    mode = rng.choice(("fin", "rst"))
    request = build_upgrade_request(profile.path, HOST)
    preface = build_client_preface()
    steps: list[tuple[str, Step]] = []
    if stage is TeardownStage.MID_HEADERS:
        steps.append(("partial_request", _send(0, request[: rng.between(1, len(request) - 4)])))
    else:
        steps.append(("request", _send(0, request)))
    if stage not in (TeardownStage.MID_HEADERS, TeardownStage.REQUEST_SENT):
        steps.append(("answer", _read(0, timeout=REQUEST_TIMEOUT_S)))
    if stage is TeardownStage.PARTIAL_PREFACE:
        steps.append(("partial_preface", _send(0, preface[: rng.between(1, len(preface) - 1)])))
    elif stage in (TeardownStage.AFTER_SETTINGS, TeardownStage.MID_RESPONSE):
        steps.append(("preface", _send(0, preface)))
        steps.append(("settings", _read(0, ReadUntil.ANY, timeout=CASE_TIMEOUT_S)))
        if stage is TeardownStage.MID_RESPONSE:
            steps.append(("settings_ack", _send(0, SETTINGS_ACK)))
            steps.append(("stream", _read(0, ReadUntil.ANY, timeout=CASE_TIMEOUT_S)))
    steps.append(("leave", Step(Action.RST if mode == "rst" else Action.CLOSE, 0)))
    steps.append(("probe", Step(Action.PROBE, path=profile.path, timeout_s=REQUEST_TIMEOUT_S)))
    return Segment("h2c", tuple(steps), {"stage": stage.value, "mode": mode})


# -- WebSocket -------------------------------------------------------------------------------


def websocket(rng: SeedRng, profile: Profile) -> Segment:
    """A WebSocket session with one torture case (frames masked with keys from the PRNG)."""
    case = _pinned(websocket_cases.BY_NAME, rng.choice(WS_CASES), "WebSocket")
    key = make_key(rng.token(16))
    leave = Action.RST if rng.chance(300) else Action.CLOSE
    if isinstance(case, HandshakeCase):
        handshake = build_handshake(profile.ws_path, HOST, key if case.with_key else None,
                                    version=case.version)
        steps = [("handshake", _send(0, handshake)),
                 ("handshake_reply", _read(0, timeout=WS_TIMEOUT_S)),
                 ("leave", Step(leave, 0))]
        return Segment("ws", tuple(steps), {"case": case.name, "key": key})
    assert isinstance(case, WsCase)
    frames: list[Frame] = list(case.frames)
    if case.kind in (CaseKind.BAD_FRAME, CaseKind.ECHO):
        frames.append(CANARY_FRAME)
    if case.kind in (CaseKind.ECHO, CaseKind.PING_FLOOD):
        # A valid close after the answered frames ends the read as soon as the server
        # replies, instead of at the deadline; the oracle has decided before it arrives.
        frames.append(Frame(Opcode.CLOSE, close_payload(1000)))
    wire = encode_frames(frames, (rng.token(4) for _ in frames))
    steps = [("handshake", _send(0, build_handshake(profile.ws_path, HOST, key))),
             ("handshake_reply", _read(0, timeout=WS_TIMEOUT_S)),
             ("frames", _send(0, wire)),
             ("reaction", _read(0, ReadUntil.WS_CLOSE, timeout=WS_TIMEOUT_S,
                                cap=4 * 1024 * 1024)),
             ("leave", Step(leave, 0))]
    return Segment("ws", tuple(steps), {"case": case.name, "key": key})


# -- SSE -------------------------------------------------------------------------------------


def sse(rng: SeedRng, profile: Profile) -> Segment:
    """Subscribe, vanish at a stage (FIN or RST), then check a fresh subscription works."""
    stage = rng.choice(list(SseKillStage))
    mode = rng.choice(("fin", "rst"))
    request = _request("GET", profile.sse_path, ("Accept: text/event-stream",
                                                  "Cache-Control: no-cache"))
    steps: list[tuple[str, Step]] = [("subscribe", _send(0, request))]
    if stage is not SseKillStage.BEFORE_HEADERS:
        steps.append(("head", _read(0, ReadUntil.ANY, timeout=REQUEST_TIMEOUT_S)))
    if stage is SseKillStage.MID_EVENT:
        steps.append(("event", _read(0, ReadUntil.ANY, timeout=CASE_TIMEOUT_S)))
    if stage is SseKillStage.IDLE:
        steps.append(("hold", Step(Action.SLEEP, interval_s=rng.millis(50, 400))))
    steps.append(("leave", Step(Action.RST if mode == "rst" else Action.CLOSE, 0)))
    steps += [("check", _send(1, request)),
              ("check_head", _read(1, ReadUntil.ANY, timeout=REQUEST_TIMEOUT_S)),
              ("check_close", Step(Action.CLOSE, 1))]
    return Segment("sse", tuple(steps), {"stage": stage.value, "mode": mode})


BUILDERS = {"markov": markov, "adv": adversarial, "h2c": h2c, "ws": websocket, "sse": sse}
