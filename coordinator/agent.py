"""``assay agent``: forensics beside a remote target, answering the coordinator over ZeroMQ.

How this works: the agent binds a REP socket and answers each ``wire.ForensicsRequest`` with
a ``wire.ForensicsReply`` holding the same captures the coordinator takes for a local pid
(``coordinator.forensics.capture_process``): files by name, and a status per capture. It
serves one request at a time, polls with a short timeout so Ctrl-C works, and answers even
a malformed request (REP must), with the reason as a missing capture.

Security: a forensics reply exposes the target's memory map, fds and stacks, so on anything
but loopback the agent requires CURVE (pyzmq's libsodium encryption plus ZAP
authentication): its own secret key, and the public keys of the coordinators allowed to ask.
Without keys it refuses a non-loopback bind (exit 2). Keys come from files (certificates as
written by ``zmq.auth.create_certificates``) or from the environment as Z85 text:

* agent: ``--secret-key FILE`` / ``ASSAY_AGENT_SECRET_KEY``; ``--authorized-keys DIR`` (every
  ``*.key`` in it) / ``ASSAY_AGENT_CLIENT_KEYS`` (comma-separated public keys);
* coordinator: ``--agent-server-key FILE|Z85`` / ``ASSAY_AGENT_SERVER_KEY`` (the agent's
  public key) and ``--agent-client-key FILE`` / ``ASSAY_AGENT_CLIENT_SECRET``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import zmq

from actors import curve
from coordinator import forensics
from protocols import wire

EXIT_USAGE = 2
REPLY_CAP = 16 * 1024 * 1024
POLL_MS = 500


def add_agent_parser(sub: Any) -> None:
    agent = sub.add_parser("agent", help="answer forensics requests beside a remote target")
    agent.add_argument("--bind", required=True, help="tcp://HOST:PORT to listen on")
    agent.add_argument("--pid", type=int, help="the target's pid (default: whoever listens "
                                               "on the port the coordinator names)")
    agent.add_argument("--secret-key", type=Path, help="the agent's CURVE secret certificate")
    agent.add_argument("--authorized-keys", type=Path,
                       help="directory of public certificates of allowed coordinators")
    agent.add_argument("--max-requests", type=int, default=0,
                       help="exit after this many requests (0: serve until interrupted)")


def run_agent(args: argparse.Namespace) -> int:
    endpoint = args.bind
    if not endpoint.startswith("tcp://") or urlsplit(endpoint).port is None:
        return _error("--bind must look like tcp://HOST:PORT")
    try:
        secret = curve.load_key(args.secret_key or os.environ.get("ASSAY_AGENT_SECRET_KEY"),
                                secret=True)
        clients = curve.load_authorized(
            args.authorized_keys, os.environ.get("ASSAY_AGENT_CLIENT_KEYS", "").split(","))
    except curve.CurveKeyError as exc:
        return _error(str(exc))
    loopback = curve.endpoint_is_loopback(endpoint)
    if not loopback and (secret is None or not clients):
        return _error(f"refusing to bind {endpoint} (not loopback) without CURVE keys: give "
                      "--secret-key and --authorized-keys (or ASSAY_AGENT_SECRET_KEY and "
                      "ASSAY_AGENT_CLIENT_KEYS)")
    context = zmq.Context()
    authenticator = None
    sock = context.socket(zmq.REP)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        if secret is not None:
            authenticator = curve.start_authenticator(context, clients)
            curve.make_server(sock, secret)
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            return _error(f"cannot bind {endpoint}: {exc}")
        print(f"assay-agent listening on {endpoint}"
              f"{' (CURVE)' if secret is not None else ''}", flush=True)
        return _serve(sock, args)
    finally:
        sock.close(0)
        if authenticator is not None:
            authenticator.stop()
        context.term()


def _serve(sock: zmq.Socket, args: argparse.Namespace) -> int:
    stop = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["now"] = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    served = 0
    poller = zmq.Poller()
    poller.register(sock, zmq.POLLIN)
    while not stop["now"]:
        if not dict(poller.poll(POLL_MS)):
            continue
        frame = sock.recv()
        sock.send(wire.encode(answer(frame, args.pid)))
        served += 1
        if args.max_requests and served >= args.max_requests:
            break
    return 0


def answer(frame: bytes, default_pid: int | None) -> wire.ForensicsReply:
    """Build the reply to one request frame (never raises for a bad frame)."""
    try:
        request = wire.decode(frame)
    except wire.WireError as exc:
        return wire.ForensicsReply("", 0, {}, {"request": f"missing: malformed request: {exc}"})
    if not isinstance(request, wire.ForensicsRequest):
        return wire.ForensicsReply("", 0, {}, {"request": "missing: not a forensics request"})
    pid = request.pid or default_pid or listener_pid(request.port)
    if not pid:
        return wire.ForensicsReply(request.request_id, 0, {}, {
            "process/*": f"missing: no pid given and nothing listens on port {request.port}"})
    with tempfile.TemporaryDirectory(prefix="assay-agent-") as tmp:
        dossier = forensics.Dossier(Path(tmp))
        forensics.capture_process(pid, request.port or None, dossier,
                                  deadline_s=max(1.0, request.budget_s))
        files: dict[str, bytes] = {}
        status: dict[str, str] = {}
        total = 0
        for capture in dossier.captures:
            if not capture.ok:
                status[capture.name] = f"missing: {capture.reason}"
                continue
            data = (Path(tmp) / capture.name).read_bytes()
            if total + len(data) > REPLY_CAP:
                status[capture.name] = "missing: reply size cap reached"
                continue
            total += len(data)
            files[capture.name] = data
            status[capture.name] = "ok"
    return wire.ForensicsReply(request.request_id, pid, files, status)


def listener_pid(port: int) -> int | None:
    if not port:
        return None
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                return conn.pid
    except (psutil.Error, OSError):
        return None
    return None


def request_forensics(endpoint: str, dossier: forensics.Dossier, *, pid: int | None,
                      port: int, budget_s: float, server_key: str | None = None,
                      client_key: str | None = None) -> None:
    """Ask the agent at ``endpoint``; write its files under ``agent/`` (blocking, bounded)."""
    try:
        server = curve.load_key(server_key or os.environ.get("ASSAY_AGENT_SERVER_KEY"),
                                secret=False)
        client = curve.load_key(client_key or os.environ.get("ASSAY_AGENT_CLIENT_SECRET"),
                                secret=True)
    except curve.CurveKeyError as exc:
        dossier.missing("agent/*", str(exc))
        return
    if not curve.endpoint_is_loopback(endpoint) and (server is None or client is None):
        dossier.missing("agent/*", f"{endpoint} is not loopback: CURVE keys are required "
                                   "(--agent-server-key and --agent-client-key)")
        return
    context = zmq.Context.instance()
    sock = context.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        if server is not None and client is not None:
            curve.make_client(sock, server, client)
        sock.connect(endpoint)
        request_id = uuid.uuid4().hex[:12]
        sock.send(wire.encode(wire.ForensicsRequest(request_id, pid or 0, port, budget_s)))
        wait_s = budget_s + max(1.0, budget_s / 2)  # its capture deadline, plus transfer
        if not sock.poll(int(wait_s * 1000), zmq.POLLIN):
            dossier.missing("agent/*", f"the agent at {endpoint} did not answer within "
                                       f"{wait_s:g} s")
            return
        try:
            reply = wire.decode(sock.recv())
        except wire.WireError as exc:
            dossier.missing("agent/*", f"malformed reply from the agent: {exc}")
            return
    finally:
        sock.close(0)
    if not isinstance(reply, wire.ForensicsReply):
        dossier.missing("agent/*", "the agent answered something else")
        return
    for name, state in sorted(reply.status.items()):
        if state == "ok" and name in reply.files:
            dossier.write(f"agent/{name}", reply.files[name])
        else:
            dossier.missing(f"agent/{name}", state.removeprefix("missing: "))


def _error(message: str) -> int:
    sys.stderr.write(f"assay agent: error: {message}\n")
    return EXIT_USAGE
