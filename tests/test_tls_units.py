"""The TLS plumbing without the fleet: options on the wire, flag checks, failure causes, and
both client paths (trio stream, non-blocking hot-path socket) against an in-process server."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path

import pytest
import trio

from actors import keepalive, net, tls, tls_socket
from actors.walker import Target
from coordinator.config import ConfigError
from coordinator.tls_flags import options_from_args
from protocols.tls_options import ALPN_H2, TlsOptions
from tests.tls_certs import test_certs


def test_options_round_trip_the_plan() -> None:
    options = TlsOptions(insecure=True, ca_file="/x/ca.pem", sni="a.example")
    assert TlsOptions.from_wire(options.to_wire()) == options
    assert TlsOptions.from_wire(None) == TlsOptions()
    assert TlsOptions.from_wire({"insecure": True, "bogus": 1}) == TlsOptions(insecure=True)
    assert TlsOptions().to_wire() == {}


def _args(**values: object) -> argparse.Namespace:
    base = {"insecure": False, "ca_file": None, "sni": None, "cert": None, "key": None}
    return argparse.Namespace(**{**base, **values})


def test_good_files_load_and_bad_ones_are_config_errors() -> None:
    certs = test_certs()
    options = options_from_args(_args(ca_file=str(certs.ca), cert=str(certs.client_cert),
                                      key=str(certs.client_key)))
    assert options.ca_file == str(certs.ca)
    with pytest.raises(ConfigError, match="cannot load the certificate"):
        options_from_args(_args(cert=str(certs.client_cert)))  # key is elsewhere
    with pytest.raises(ConfigError, match="not a PEM CA bundle"):
        options_from_args(_args(ca_file=str(certs.client_key)))


def test_failure_causes() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "self-signed certificate"
    cause, detail = tls.describe_failure(trio.BrokenResourceError())
    assert cause == "eof"
    broken = trio.BrokenResourceError()
    broken.__cause__ = verify
    cause, detail = tls.describe_failure(broken)
    assert cause == "tls_verify" and "self-signed certificate" in detail
    assert tls.describe_failure(ConnectionResetError())[0] == "reset"


@pytest.fixture
def server_context() -> ssl.SSLContext:
    certs = test_certs()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert, certs.key)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def _echo_http(stream: trio.SSLStream) -> None:
    try:
        while True:
            data = await stream.receive_some(65536)
            if not data:
                return
            if b"\r\n\r\n" in data:
                await stream.send_all(RESPONSE)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return


async def _with_server(context: ssl.SSLContext, body) -> None:  # type: ignore[no-untyped-def]
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_ssl_over_tcp, _echo_http, 0, context)
        port = listeners[0].transport_listener.socket.getsockname()[1]
        try:
            await body(port)
        finally:
            nursery.cancel_scope.cancel()


def test_both_client_paths_speak_tls_and_offer_alpn(server_context: ssl.SSLContext) -> None:
    certs = test_certs()

    async def body(port: int) -> None:
        target = Target.from_url(f"https://127.0.0.1:{port}/")
        with trio.fail_after(10):
            stream = await net.connect(target, 5, alpn=ALPN_H2)
            assert tls.negotiated_alpn(stream) == "h2"
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await stream.receive_some(100)).endswith(b"ok")
            await net.half_close(stream)  # FIN on the TCP stream under TLS
            await net.close_with_reset(stream)
            conn = await keepalive.open_connection(target)
            for _ in range(3):
                keepalive.begin(conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
                response = await keepalive.complete(conn)
                assert response.status == 200
            assert tls.negotiated_alpn(conn.sock) == "http/1.1"
            conn.close()

    tls.install(TlsOptions(ca_file=str(certs.ca)))
    try:
        trio.run(_with_server, server_context, body)
    finally:
        tls.install(TlsOptions())


def test_an_untrusted_server_is_tls_verify_on_both_paths(
        server_context: ssl.SSLContext) -> None:
    async def body(port: int) -> None:
        target = Target.from_url(f"https://127.0.0.1:{port}/")
        with trio.fail_after(10):
            with pytest.raises(net.TransportError) as first:
                await net.connect(target, 5)
            with pytest.raises(net.TransportError) as second:
                await keepalive.open_connection(target)
        assert first.value.cause == second.value.cause == "tls_verify"

    tls.install(TlsOptions(ca_file=str(test_certs().other_ca)))
    try:
        trio.run(_with_server, server_context, body)
    finally:
        tls.install(TlsOptions())


@pytest.mark.parametrize("name", [".leading-dot.example", "a" * 64 + ".example"])
def test_a_server_name_ssl_refuses_is_a_config_error(name: str) -> None:
    """ssl refuses these as server_hostname (ValueError, not OSError): caught at the flag,
    they must not become a traceback at the first handshake."""
    with pytest.raises(ConfigError, match="--sni"):
        options_from_args(_args(sni=name))


def test_a_host_name_ssl_refuses_is_a_transport_error_on_both_paths(
        server_context: ssl.SSLContext) -> None:
    """A server name ssl refuses (a leading dot: refused in C, whatever idna codec is
    registered; reached here through --sni installed without the flag check): a
    TransportError, not a ValueError traceback, on the stream path and the hot path."""
    async def body(port: int) -> None:
        target = Target.from_url(f"https://127.0.0.1:{port}/")
        with trio.fail_after(10):
            with pytest.raises(net.TransportError) as first:
                await net.connect(target, 5)
            with pytest.raises(net.TransportError) as second:
                await keepalive.open_connection(target)
        causes = (first.value.cause, second.value.cause)
        assert causes == ("tls_handshake", "tls_handshake"), (first.value, second.value)

    tls.install(TlsOptions(ca_file=str(test_certs().ca), sni=".leading-dot.example"))
    try:
        trio.run(_with_server, server_context, body)
    finally:
        tls.install(TlsOptions())


def test_an_encrypted_key_is_a_config_error_without_a_passphrase_prompt(
        tmp_path: Path) -> None:
    """OpenSSL's default passphrase callback prompts on the terminal (a hang in every
    actor); assay asks for no passphrase: an encrypted --key is a usage error."""
    from cryptography.hazmat.primitives import serialization

    certs = test_certs()
    key = serialization.load_pem_private_key(certs.client_key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    asked: list[bool] = []
    real = ssl.SSLContext.load_cert_chain

    def no_prompt(self: ssl.SSLContext, certfile: str, keyfile: str | None = None,
                  password: object = None) -> None:
        asked.append(password is None)  # None lets OpenSSL prompt on the terminal
        real(self, certfile, keyfile, password)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ssl.SSLContext, "load_cert_chain", no_prompt)
        with pytest.raises(ConfigError, match="encrypted"):
            options_from_args(_args(cert=str(certs.client_cert), key=str(encrypted)))
        tls.install(TlsOptions(insecure=True, cert=str(certs.client_cert), key=str(encrypted)))
        try:
            with pytest.raises(ssl.SSLError):
                tls.client_context()
        finally:
            tls.install(TlsOptions())
    assert asked and not any(asked)


def test_a_kept_alive_tls_connection_the_server_reset_is_stale_not_a_tls_error(
        server_context: ssl.SSLContext) -> None:
    """Over TCP, a send on a kept-alive connection the server reset while idle fails with
    ECONNRESET ("reset", which the load and watch walkers retry once on a fresh connection,
    RFC 9112 §9.3.1); over TLS the same send fails with ``ssl.SSLEOFError``: it must be the
    same cause, not a ``tls_error`` counted against a correct server."""
    async def answer_then_reset(stream: trio.SSLStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(RESPONSE)
        tcp = stream.transport_stream
        net.arm_reset_socket(tcp.socket)  # type: ignore[attr-defined]
        await tcp.aclose()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_ssl_over_tcp, answer_then_reset, 0,
                                            server_context)
            port = listeners[0].transport_listener.socket.getsockname()[1]
            target = Target.from_url(f"https://127.0.0.1:{port}/")
            causes = []
            with trio.fail_after(10):
                conn = await keepalive.open_connection(target)
                keepalive.begin(conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
                assert (await keepalive.complete(conn)).status == 200
                await trio.sleep(0.2)  # the RST is in
                try:
                    keepalive.begin(conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET")
                    await keepalive.complete(conn)
                except (net.TransportError, OSError) as exc:
                    causes.append(keepalive.failure_cause(exc))
                conn.close()
                stream = await net.connect(target, 5)
                await net.send_all(stream, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5)
                await net.receive_some(stream, 5)
                await trio.sleep(0.2)
                try:
                    await net.send_all(stream, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5)
                    await net.receive_some(stream, 5)
                except net.TransportError as exc:
                    causes.append(exc.cause)
                await net.aclose_quietly(stream)
            nursery.cancel_scope.cancel()
        assert causes and set(causes) <= {"reset", "eof"}, causes

    tls.install(TlsOptions(ca_file=str(test_certs().ca)))
    try:
        trio.run(main)
    finally:
        tls.install(TlsOptions())
    assert net.cause_of(ssl.SSLEOFError(8, "EOF occurred in violation of protocol")) == "reset"
    assert net.cause_of(ssl.SSLError(1, "bad record mac")) == "tls_error"


def test_a_deadline_already_past_is_a_timeout_not_a_value_error(
        server_context: ssl.SSLContext) -> None:
    """hold and loris give the handshake what is left of the connect deadline, which a
    connect that completed at the deadline leaves negative; trio refuses a negative timeout
    with ValueError: the handshake and every net helper must count a timeout instead
    (loris counts nothing for a handshake cut by the attack's end, hold a connect timeout)."""
    async def body(port: int) -> None:
        target = Target.from_url(f"https://127.0.0.1:{port}/")
        with trio.fail_after(10):
            sock = trio.socket.socket()
            await sock.connect(("127.0.0.1", port))
            with pytest.raises(net.TransportError) as late:
                await tls_socket.secure(sock, target, -0.001)
            assert late.value.cause == "tls_timeout"
            assert sock.fileno() == -1  # closed
            stream = await net.connect_tcp(target, 5)
            with pytest.raises(net.TransportError) as late:
                await net.receive_some(stream, -0.001)
            assert late.value.cause == "timeout"
            assert (await net.read_until(stream, -0.001, 10)).ending is net.Ending.TIMEOUT
            await net.aclose_quietly(stream)
            with pytest.raises(net.TransportError) as late:
                await net.connect_tcp(target, -0.001)
            assert late.value.cause == "connect_timeout"

    tls.install(TlsOptions(ca_file=str(test_certs().ca)))
    try:
        trio.run(_with_server, server_context, body)
    finally:
        tls.install(TlsOptions())


def test_a_server_that_closes_mid_handshake_is_eof_on_both_paths() -> None:
    """A FIN in place of the ServerHello (a server shedding connections) reaches OpenSSL as
    an unexpected EOF (``ssl.SSLEOFError``): ``eof`` - hold and loris count it as
    established and then closed by the peer, as they document - not a refused handshake."""
    async def main() -> list[str]:
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        async def read_then_fin() -> None:
            for _ in range(2):
                sock, _ = await listener.accept()
                with trio.move_on_after(0.3):
                    while await sock.recv(65536):
                        pass
                sock.close()

        causes = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_then_fin)
            target = Target.from_url(f"https://127.0.0.1:{port}/")
            with trio.fail_after(10):
                for connect in (lambda: net.connect(target, 5),
                                lambda: keepalive.open_connection(target)):
                    with pytest.raises(net.TransportError) as closed:
                        await connect()
                    causes.append(closed.value.cause)
        listener.close()
        return causes

    tls.install(TlsOptions(insecure=True))
    try:
        assert trio.run(main) == ["eof", "eof"]
    finally:
        tls.install(TlsOptions())
