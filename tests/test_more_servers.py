"""The adversarial catalogue against six more HTTP/1.1 servers: each verdict a real defect.

Servers: node v20 ``http.createServer`` (llhttp), granian (Rust, hyper), twisted.web,
cheroot (CherryPy's server), werkzeug's dev server and the standard library's
``http.server`` (apps in ``tests/node_http_server.js`` and ``tests.more_apps``). Each was
run with the default ``assay run --target URL --duration 20s``; every violation was then
re-sent alone on a fresh connection and judged against the RFC. None was a false alarm:

* None of the six validates the Host field (node only requires one): RFC 9112 §3.2,
  "A server MUST respond with a 400 (Bad Request) status code to any HTTP/1.1 request
  message that lacks a Host header field and to any request message that contains more
  than one Host header field line or a Host header field with an invalid field value."
  Two *different* Host lines (or a comma list) accepted are HIGH: which one routes?
* node: 400 to valid HTAB OWS in Content-Length and Transfer-Encoding (RFC 9110 §5.5,
  OWS = *( SP / HTAB ); a safe LOW miss, as stock nginx); takes ``Transfer-Encoding:``
  (empty) beside a Content-Length (RFC 9112 §6.3 (4): 400, then close); keeps an HTTP/1.0
  connection after a chunked body (§6.1: "MUST ... close the connection after processing").
* granian: switches to WebSocket on an HTTP/1.0 request (RFC 9110 §7.8: "A server MUST
  ignore an Upgrade header field that is received in an HTTP/1.0 request") and on a POST
  (RFC 6455 §4.1: "The method of the request MUST be GET").
* twisted.web ignores ``Transfer-Encoding: identity`` and frames by Content-Length (or by
  nothing): the bytes after are served as a second request (I-ADV-DESYNC), §6.3 (4).
* cheroot: rejects the absolute-form (§3.2.2: "A server MUST accept the absolute-form"),
  reads ``0x5``/``+5``/``0_5`` as chunk sizes (Python's ``int(s, 16)``; the request after
  the body is answered: desync), 500 on a bare CR or an overflowing chunk size, keeps the
  connection after ``Connection: Close`` (options are case-insensitive, RFC 9110 §7.6.1;
  RFC 9112 §9.6: MUST close), 100 Continue to HTTP/1.0 (RFC 9110 §10.1.1: MUST ignore),
  takes CL+TE and invalid Content-Lengths, and leaves a trailer section unread (the
  pipelined request after it gets 400 "Malformed Request-Line": the trailer was read as
  a request line, RFC 9112 §7.1.2).
* werkzeug's dev server: 500 on any chunk extension or trailer section (its dechunker
  parses ``int(line, 16)``; RFC 9112 §7.1.1: "A recipient MUST ignore unrecognized chunk
  extensions"), takes every invalid Content-Length and Transfer-Encoding (it closes after
  every response, so nothing desyncs, but §6.3 still asks a 400).
* cheroot and werkzeug send a WSGI app's body after the head of a HEAD response (RFC
  9110 §9.3.2: "the server MUST NOT send content in the response"), as waitress does
  (``tests/test_response_rules_servers.py``); the response rules catch it (I-RESP-MUST).
* http.server (a ThreadingHTTPServer handler reading Content-Length, as most do): knows no
  Transfer-Encoding, so every chunked or CL+TE request desyncs; takes invalid lengths.

The tests sweep the whole catalogue once per server (``tests.conformance_sweep``: the
walker's own probe, no confirmation, several probes at once, ~5 s each) and assert the
established verdicts: exactly, where the list is short; for the three lax servers, the
headline defects named and nothing outside the established list (a new alarm fails).
A server that is not installed is skipped.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from protocols.adversarial_cases import CASES
from protocols.response_bytes import parse_exchange, request_facts
from protocols.response_rules import Verdict, check
from tests.conformance_sweep import Sweep, failing, sweep
from tests.more_apps import MODULES
from tests.servers import free_port, stop, wait_for_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent

#: Host values no server but node refuses (node requires a Host, so ``host-missing`` is 400).
HOST_UNCHECKED = {
    "host-backslash", "host-bad-port", "host-comma-list", "host-duplicate",
    "host-duplicate-identical", "host-duplicate-lowercase", "host-fragment", "host-invalid",
    "host-ipv6-unbracketed", "host-ipv6-unclosed", "host-path", "host-query",
    "host-space-inside", "host-userinfo", "host-userinfo-empty"}
#: Two different Host values in one request: HIGH (a routing hazard).
HOST_HIGH = {"host-comma-list", "host-duplicate", "host-duplicate-lowercase"}
#: Field lines with whitespace before the colon, taken (RFC 9112 §5.1: MUST 400).
WS_BEFORE_COLON = {"ws-before-colon", "ws-before-colon-tab", "ws-before-colon-te",
                   "host-ws-before-colon", "cl-ws-before-colon"}
#: Invalid Transfer-Encoding beside a Content-Length, taken (RFC 9112 §6.3 (4)).
TE_INVALID_CL = {"te-comma-only-cl", "te-empty-cl", "te-empty-after-cl", "te-ff-cl",
                 "te-vt-cl", "te-tab-before-colon-cl"}
#: Chunked after all, beside a Content-Length: framed by the length (RFC 9112 §6.1).
TE_CHUNKED_CL = {"te-leading-comma-cl", "te-list-empty-cl", "te-mixed-case-cl",
                 "te-name-lowercase-cl", "te-ows-cl", "te-tab-cl", "te-trailing-comma-cl",
                 "te-uppercase-cl"}
#: Invalid Content-Length values taken (RFC 9112 §6.3 (5)).
CL_INVALID = {"cl-conflicting", "cl-negative", "cl-negative-zero", "cl-plus-sign",
              "cl-underscore"}
#: Lenient chunk sizes read as numbers (RFC 9112 §7.1: chunk-size = 1*HEXDIG).
LENIENT_SIZES = {"chunk-size-0x-smuggle", "chunk-size-0x-upper-smuggle",
                 "chunk-size-inner-underscore-smuggle", "chunk-size-minus-zero-smuggle",
                 "chunk-size-plus-smuggle", "chunk-size-underscore-smuggle"}
TE_UNKNOWN = {"te-chunked-identity-cl", "te-chunked-not-final", "te-chunkedx-cl",
              "te-empty", "te-gzip-only", "te-identity", "te-identity-after-cl",
              "te-identity-cl", "te-quoted-cl", "te-space-inside-cl", "te-xchunked"}
HOST_MORE = {"host-ctl", "host-missing", "host-nul", "host-obs-fold"}

#: Every violation each lax server showed (two sweeps and a 20 s run agreed).
STDLIB = (HOST_UNCHECKED | HOST_MORE | WS_BEFORE_COLON | TE_INVALID_CL | TE_CHUNKED_CL
          | CL_INVALID | TE_UNKNOWN | {"bare-cr-request-line", "cl-empty", "cl-te-aligned",
                                       "cl-te-smuggle", "te-cl-smuggle", "te-http10",
                                       "te-identity-lines-cl", "te-nul-cl", "te-param-cl"})
CHEROOT = (HOST_UNCHECKED | HOST_MORE | WS_BEFORE_COLON | TE_INVALID_CL | TE_CHUNKED_CL
           | CL_INVALID | LENIENT_SIZES
           | {"absolute-form", "absolute-form-host-differs", "chunk-size-bare-cr",
              "chunk-size-overflow", "cl-obs-fold", "cl-te-aligned", "cl-te-smuggle",
              "connection-close-mixed-case", "expect-100-http10",
              "expect-100-http10-keep-alive", "leading-ws-line", "leading-ws-line-te",
              "pipeline-after-chunked-trailer", "te-cl-smuggle", "te-empty"})
WERKZEUG = (HOST_UNCHECKED | HOST_MORE | WS_BEFORE_COLON | TE_INVALID_CL | CL_INVALID
            | TE_UNKNOWN
            | {"bare-cr-request-line", "chunk-ext-bare-cr", "chunk-size-bare-cr",
               "chunked-extension", "chunked-extension-name-only", "chunked-extension-quoted",
               "chunked-trailer", "chunked-trailers-two", "cl-conflicting-list",
               "cl-decimal-point", "cl-empty", "cl-exponent", "cl-fullwidth-digit", "cl-hex",
               "cl-obs-fold", "cl-quoted", "cl-semicolon", "cl-space-inside",
               "cl-trailing-letter", "expect-100-http10", "expect-100-http10-keep-alive",
               "pipeline-after-chunked-trailer", "trailer-authorization",
               "trailer-content-length", "trailer-host", "trailer-merge-authorization",
               "trailer-merge-content-length", "trailer-merge-host",
               "trailer-merge-transfer-encoding", "trailer-obs-fold",
               "trailer-transfer-encoding"})


@contextmanager
def server(name: str) -> Iterator[str]:
    """``name`` (node, or one of ``tests.more_apps``) on a free port; skipped if absent."""
    port = free_port()
    if name == "node":
        if shutil.which("node") is None:
            pytest.skip("node is not installed")
        command = ["node", str(ROOT / "tests" / "node_http_server.js"), str(port)]
    else:
        if importlib.util.find_spec(MODULES[name]) is None:
            pytest.skip(f"{name} is not installed")
        command = [sys.executable, "-m", "tests.more_apps", name, str(port)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 20)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(proc)


def broken_rules(url: str, method: str) -> set[str]:
    """Response rules (``protocols.response_rules``) one plain ``method /`` request breaks."""
    port = int(url.rsplit(":", 1)[1].strip("/"))
    sent = f"{method} / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    request = request_facts(sent)
    assert request is not None
    received, closed = b"", False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(sent)
        sock.settimeout(0.5)  # what arrives after the response is what the rules judge
        while not closed:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            closed = not data
            received += data
    return {finding.rule
            for found in parse_exchange(method, received, closed=closed,
                                        persistent=request.persistent)
            for finding in check(request, found.head, found.body)
            if finding.verdict is Verdict.VIOLATION}


def swept(name: str, head_rules: set[str] | frozenset[str] = frozenset()) -> Sweep:
    """The whole catalogue once against ``name``, after checking that GET and HEAD answers
    break exactly ``head_rules`` (on HEAD; none on GET)."""
    with server(name) as url:
        assert broken_rules(url, "GET") == set()
        assert broken_rules(url, "HEAD") == set(head_rules)
        result = sweep(url, CASES, concurrency=8)
    assert len(result.verdicts) == len(CASES)
    assert result.with_verdict("unjudged") == [], result.with_verdict("unjudged")
    return result


def test_node_unchecked_host_empty_te_and_http10_keep_alive() -> None:
    result = swept("node")
    assert set(result.with_verdict("violation")) == HOST_UNCHECKED | {
        "cl-tab-ows", "te-chunked-ows", "te-empty-cl", "te-http10-chunked"}, failing(result)
    assert result.high() == {"adv.wrong_accepted": HOST_HIGH | {"te-empty-cl"}}


def test_granian_unchecked_host_and_websocket_upgrade_on_http10_and_post() -> None:
    result = swept("granian")
    assert set(result.with_verdict("violation")) == HOST_UNCHECKED | {
        "host-missing", "upgrade-ws-http10", "upgrade-ws-post"}, failing(result)
    assert result.high() == {"adv.wrong_accepted": HOST_HIGH}


def test_twisted_ignores_identity_transfer_encoding_and_desyncs() -> None:
    result = swept("twisted")
    identity = {"te-identity", "te-identity-after-cl", "te-identity-cl"}
    assert set(result.with_verdict("violation")) == HOST_UNCHECKED | identity | {
        "host-ctl", "host-missing", "host-obs-fold"}, failing(result)
    assert result.high() == {"adv.wrong_accepted": HOST_HIGH | identity,
                             "adv.desync": {"te-identity-after-cl"}}


def lax(result: Sweep, established: set[str], headline: set[str]) -> None:
    """The headline defects are found and nothing outside the established list fires."""
    found = set(result.with_verdict("violation"))
    assert headline <= found, (headline - found, failing(result))
    assert found <= established, (found - established, failing(result))


def test_stdlib_http_server_knows_no_transfer_encoding() -> None:
    result = swept("stdlib")
    lax(result, STDLIB, {"cl-te-smuggle", "te-cl-smuggle", "te-uppercase-cl",
                         "cl-conflicting", "host-missing", "host-duplicate"})
    high = result.high()
    assert {"te-cl-smuggle", "cl-te-smuggle", "cl-conflicting"} <= high["adv.desync"]
    assert high["adv.wrong_accepted"] >= HOST_HIGH


def test_cheroot_lenient_chunk_sizes_absolute_form_and_close_case() -> None:
    result = swept("cheroot", {"no_content_after_head"})
    lax(result, CHEROOT, LENIENT_SIZES | {
        "absolute-form", "connection-close-mixed-case", "expect-100-http10",
        "chunk-size-overflow", "te-empty-cl", "cl-plus-sign"})
    high = result.high()
    assert high["adv.desync"] >= LENIENT_SIZES
    assert {"te-empty-cl", "cl-plus-sign"} | HOST_HIGH <= high["adv.wrong_accepted"]


def test_werkzeug_chunk_extensions_trailers_and_lengths() -> None:
    result = swept("werkzeug", {"no_content_after_head"})
    lax(result, WERKZEUG, {"chunked-extension", "chunked-trailer", "cl-hex", "cl-negative",
                           "te-identity", "expect-100-http10", "host-missing"})
    assert "adv.desync" not in result.high()  # it closes after every response
    assert {"cl-hex", "te-identity"} | HOST_HIGH <= result.high()["adv.wrong_accepted"]
