"""``assay proxy``: the oracle on bytes, then end to end: a proxy that frames bodies by
Content-Length only, in front of the strict backend, fails I-PROXY-DESYNC with a
reproducer; nginx in front of the same backend passes it."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from protocols import proxy_oracle
from protocols.backend_echo import Record
from protocols.proxy_cases import own_target, smuggled_target
from protocols.proxy_catalogue import ALL_CASES
from protocols.proxy_oracle import Sent
from tests.assay_cli import assay, only_results
from tests.servers import nginx_proxy
from tests.test_watch_integration import backends

RUN = "abc123"


def _arrived(raw: bytes, backend: int = 0) -> proxy_oracle.Arrived:
    parsed = proxy_oracle.parse_record(backend, Record(1, 0.0, 1, 1, raw, len(raw)))
    assert parsed is not None
    return parsed


def _sent(name: str, received: bytes = b"") -> Sent:
    case = next(c for c in ALL_CASES if c.name == name)
    return Sent(name, case.bytes_for(RUN), received)


def test_a_hidden_request_at_a_backend_is_desync() -> None:
    smuggled = _arrived(f"GET {smuggled_target(RUN, 'cl_te')} HTTP/1.1\r\nHost: b\r\n\r\n"
                        .encode())
    other_run = _arrived(f"GET {smuggled_target('zzz', 'cl_te')} HTTP/1.1\r\n\r\n".encode())
    findings = proxy_oracle.judge(RUN, [_sent("cl_te")], [smuggled, other_run])
    assert [(f.invariant, f.case) for f in findings] == [("I-PROXY-DESYNC", "cl_te")]
    assert findings[0].to_json()["backend_received"].startswith("GET /assay-smuggled/")
    assert proxy_oracle.failed_high(findings)


def test_another_requests_answer_is_desync_and_own_answer_is_not() -> None:
    own = json.dumps({"backend": 0, "target": own_target(RUN, "hop_by_hop")}).encode()
    other = json.dumps({"backend": 0, "target": own_target(RUN, "cl_te")}).encode()
    assert proxy_oracle.judge(RUN, [_sent("hop_by_hop", b"HTTP/1.1 200 OK\r\n\r\n" + own)],
                              []) == []
    findings = proxy_oracle.judge(RUN, [_sent("hop_by_hop", b"x" + other)], [])
    assert [f.invariant for f in findings] == ["I-PROXY-DESYNC"]


def test_hop_by_hop_and_rewrite() -> None:
    hop = _arrived(f"GET {own_target(RUN, 'hop_by_hop')} HTTP/1.1\r\nHost: b\r\n"
                   f"X-Assay-Hop: {RUN}\r\n\r\n".encode())
    sent = _sent("end_to_end").sent
    head, _, body = sent.partition(b"\r\n\r\n")
    # Host rewritten, Via added, the body re-framed as chunked: all allowed.
    reframed = (head.replace(b"Host: proxy", b"Host: upstream")
                .replace(b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked")
                + b"\r\nVia: 1.1 p\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    findings = proxy_oracle.judge(RUN, [_sent("hop_by_hop"), _sent("end_to_end")],
                                  [hop, _arrived(reframed)])
    assert [f.invariant for f in findings] == ["I-PROXY-HOP"]
    assert not proxy_oracle.failed_high(findings)
    changed = _arrived(reframed.replace(b"en;q=0.5", b"fr").replace(b"?q=1", b"?q=2"))
    findings = proxy_oracle.judge(RUN, [_sent("end_to_end")], [changed])
    # A changed field or target is RFC 9110 §7.7's SHOULD NOT (and a gateway's own
    # mapping): reported MEDIUM, never a failed run.
    assert [f.invariant for f in findings] == ["I-PROXY-ALTERED"]
    assert "Accept-Language" in findings[0].detail and "target" in findings[0].detail
    assert not proxy_oracle.failed_high(findings)
    # The body of a no-transform message is binding (MUST NOT): HIGH.
    transformed = _arrived(reframed.replace(body, body.upper()))
    findings = proxy_oracle.judge(RUN, [_sent("end_to_end")], [transformed])
    assert [f.invariant for f in findings] == ["I-PROXY-REWRITE"]
    assert proxy_oracle.failed_high(findings)
    assert proxy_oracle.dechunk(b"3\r\nabc\r\n0\r\n\r\n") == b"abc"
    assert proxy_oracle.dechunk(b"zz\r\n") is None


def test_catalogue_cases_carry_a_marked_hidden_request_with_lengths_kept() -> None:
    from protocols import cases_chunked, cases_length
    from protocols.case_builders import smuggled_request
    from protocols.proxy_catalogue import CATALOGUE, HIDDEN_HOST

    expected = {c.name for c in cases_length.CASES + cases_chunked.CASES if c.smuggles}
    assert {c.name for c in CATALOGUE} == expected and len(expected) >= 30
    assert len({c.name for c in ALL_CASES}) == len(ALL_CASES)
    adversarial = {c.name: c for c in cases_length.CASES + cases_chunked.CASES}
    for case in CATALOGUE:
        marked = case.bytes_for(RUN)
        hidden = f"GET {smuggled_target(RUN, case.name)} HTTP/1.1\r\nHost: {HIDDEN_HOST}"
        assert hidden.encode() in marked, case.name
        assert f"{own_target(RUN, case.name)} HTTP/1." in marked.decode("latin-1")
        padded = HIDDEN_HOST + "x" * (len(smuggled_target(RUN, case.name)) - 15)
        plain = adversarial[case.name].build(padded, own_target(RUN, case.name))
        # Only the hidden request changed, octet count and all: every length still holds.
        assert len(plain) == len(marked)
        assert plain.replace(smuggled_request(padded), b"") == marked.replace(
            smuggled_request(HIDDEN_HOST).replace(
                b"/assay-smuggled", smuggled_target(RUN, case.name).encode()), b"")
    conflicting = next(c for c in CATALOGUE if c.name == "cl-conflicting").bytes_for(RUN)
    head, _, body = conflicting.partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % len(body) in head
    assert body[5:].startswith(f"GET {smuggled_target(RUN, 'cl-conflicting')} ".encode())
    smuggled = _arrived(body[5:])
    findings = proxy_oracle.judge(RUN, [_sent("cl-conflicting")], [smuggled])
    assert [(f.invariant, f.case) for f in findings] == [("I-PROXY-DESYNC", "cl-conflicting")]


def test_the_compared_body_is_sent_with_no_transform() -> None:
    """Without ``no-transform`` a proxy MAY transform the content (RFC 9110 §7.7), so a
    changed body would be no violation: the end-to-end case must carry it."""
    head = _sent("end_to_end").sent.partition(b"\r\n\r\n")[0].decode()
    cache_control = [line for line in head.split("\r\n")
                     if line.lower().startswith("cache-control:")]
    assert len(cache_control) == 1 and "no-transform" in cache_control[0]


def _read_head(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes] | None:
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())  # the first one; Transfer-Encoding ignored
    return 0


@contextmanager
def cl_only_proxy(upstream: int) -> Iterator[str]:
    """A reverse proxy that frames every message by its first Content-Length only (the
    defect): it forwards head + that many body bytes, verbatim, on a new upstream
    connection, and relays one response back."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def relay(client: socket.socket) -> None:
        client.settimeout(1.0)
        buf = b""
        with client:
            while not stop.is_set():
                try:
                    got = _read_head(client, buf)
                    if got is None:
                        return
                    head, buf = got
                    need = _content_length(head)
                    while len(buf) < need:
                        buf += client.recv(65536)
                    body, buf = buf[:need], buf[need:]
                    with socket.create_connection(("127.0.0.1", upstream), timeout=1.0) as up:
                        up.sendall(head + body)
                        answer = _read_head(up, b"")
                        if answer is None:
                            return
                        rhead, rbody = answer
                        while len(rbody) < _content_length(rhead):
                            rbody += up.recv(65536)
                        client.sendall(rhead + rbody[:_content_length(rhead)])
                except (OSError, ValueError):
                    return

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=relay, args=(client,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


@pytest.mark.integration
def test_cl_only_proxy_desyncs_and_nginx_does_not(tmp_path: Path) -> None:
    with backends(1) as ports:
        with cl_only_proxy(ports[0]) as url:
            bad = assay("proxy", "--target", url, "--backend-ports", str(ports[0]),
                        "--results", str(tmp_path / "bad"))
        with nginx_proxy(tmp_path, ports) as (nginx_url, _):
            # The spelling: assay run --proxy hands over to assay proxy.
            good = assay("run", "--proxy", "--target", nginx_url, "--backend-ports",
                         str(ports[0]), "--results", str(tmp_path / "good"))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    block = only_results(tmp_path / "bad")["proxy"]
    desync = [f for f in block["findings"] if f["invariant"] == "I-PROXY-DESYNC"]
    # Its own cases and the catalogue's framing cases both find it out.
    assert {f["case"] for f in desync} >= {"cl_te", "cl-conflicting", "te-list-empty-cl"}
    cl_te = next(f for f in desync if f["case"] == "cl_te")
    assert cl_te["backend_received"].startswith("GET /assay-smuggled/")
    assert "Transfer-Encoding: chunked" in cl_te["sent"]
    assert Path(block["reproducers"]["cl_te"]).read_bytes() == cl_te["sent"].encode("latin-1")
    assert "FAILED I-PROXY-DESYNC" in bad.stdout
    assert good.returncode == 0, good.stdout + good.stderr
    verdicts = {v["id"]: v["status"] for v in only_results(tmp_path / "good")["proxy"]
                ["verdicts"]}
    assert verdicts["I-PROXY-DESYNC"] == "passed" and verdicts["I-PROXY-REWRITE"] == "passed"
    sent = only_results(tmp_path / "good")["proxy"]["cases_sent"]
    assert sorted(sent) == sorted(c.name for c in ALL_CASES)


def test_bad_input_and_absent_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    from coordinator.cli import main
    from tests.servers import free_port

    missing = assay("proxy", "--target", "http://127.0.0.1:1/", "--results", str(tmp_path))
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    absent = assay("proxy", "--target", "http://127.0.0.1:1/", "--backend-ports",
                   str(free_port()), "--results", str(tmp_path))
    assert absent.returncode == 3 and "backend 127.0.0.1:" in absent.stderr
    assert absent.stderr.strip().count("\n") == 0
    for flags, says in ((["--proxy"], "--proxy needs --backend-ports"),
                        (["--backend-ports", "1"], "--backend-ports goes with --proxy"),
                        (["--proxy", "--backend-ports", "1", "--duration", "5s"],
                         "--duration: not used")):
        code = main(["run", "--target", "http://127.0.0.1:1/", *flags, "--results",
                     str(tmp_path)])
        stderr = capsys.readouterr().err
        assert code == 2 and says in stderr, stderr
        assert stderr.strip().count("\n") == 0
