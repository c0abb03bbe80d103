"""The HTTP/2 connection pool (``actors.h2_session``) against scripted ``h2`` servers: a
deadline resets only its stream, a dying connection fails only its streams, a refused
connect reached nothing, a walker leaving keeps what others placed on its connections,
and a new connection waits for the server's SETTINGS."""

from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import pytest
import trio

from actors import h2_session, net
from actors.walker import Target
from protocols.h2_client import request_fields


async def _scripted_server(stream: trio.SocketStream) -> None:
    """Answers each request by its path: /hang never, /die closes the connection, anything
    else 200 with the path as the body."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, header_encoding=None))
    conn.initiate_connection()
    await stream.send_all(conn.data_to_send())
    while True:
        data = await stream.receive_some(65536)
        if not data:
            return
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                path = dict(event.headers)[b":path"]
                if path == b"/die":
                    await stream.aclose()
                    return
                if path != b"/hang":
                    conn.send_headers(event.stream_id, [(b":status", b"200")])
                    conn.send_data(event.stream_id, path, end_stream=True)
        await stream.send_all(conn.data_to_send())


def test_deadlines_and_dead_connections_stay_with_their_streams():
    async def main() -> dict:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        target = Target.from_url(f"http://127.0.0.1:{port}/")
        pool = h2_session.H2Pool(5.0)
        seen: dict = {}

        def fields(path: str) -> list:
            return request_fields("GET", path, target.host_header, "http", (), None)

        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, _scripted_server, listeners)
            async with pool.member(target) as member:
                with trio.move_on_after(0.3) as waited:
                    await member.request(fields("/hang"), None)
                seen["hang timed out"] = waited.cancelled_caught
                seen["same connection after"] = (await member.request(fields("/a"), None)).body
                seen["opened"] = pool.opened
                hanging = trio.Event()

                async def hang_then_fail() -> None:
                    try:
                        hanging.set()
                        await member.request(fields("/hang"), None)
                    except net.TransportError as exc:
                        seen["other stream"] = exc

                async with trio.open_nursery() as walkers:
                    walkers.start_soon(hang_then_fail)
                    await hanging.wait()
                    await trio.sleep(0.05)
                    try:
                        await member.request(fields("/die"), None)
                    except net.TransportError as exc:
                        seen["died"] = exc
                seen["next opens another"] = (await member.request(fields("/b"), None)).body
                seen["opened after"] = pool.opened
            nursery.cancel_scope.cancel()
        return seen

    async def bounded() -> dict:
        with trio.fail_after(10):
            return await main()

    seen = trio.run(bounded)
    assert seen["hang timed out"] is True
    assert seen["same connection after"] == b"/a" and seen["opened"] == 1
    assert getattr(seen["died"], "cause", None) == "eof"
    assert getattr(seen["other stream"], "cause", None) == "eof"  # failed, did not hang
    assert seen["next opens another"] == b"/b" and seen["opened after"] == 2


def test_a_refused_connect_is_marked_as_connecting():
    """A connection that never opened reached nothing: the walker records no ``sent_at``
    for it (crash attribution keeps refused connects apart, as over HTTP/1.1)."""
    async def main() -> tuple[str, bool]:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        for listener in listeners:
            await listener.aclose()
        target = Target.from_url(f"http://127.0.0.1:{port}/")
        async with h2_session.H2Pool(5.0).member(target) as member:
            with pytest.raises(net.TransportError) as raised:
                await member.request(
                    request_fields("GET", "/", target.host_header, "http", (), None), None)
            return raised.value.cause, member.connecting

    assert trio.run(main) == ("connect_refused", True)


async def _late_server(stream: trio.SocketStream) -> None:
    """Answers each request 0.3 s after it came, with its path as the body."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, header_encoding=None))
    conn.initiate_connection()
    lock = trio.Lock()

    async def send() -> None:
        async with lock:
            await stream.send_all(conn.data_to_send())

    async def answer(stream_id: int, path: bytes) -> None:
        await trio.sleep(0.3)
        conn.send_headers(stream_id, [(b":status", b"200")])
        conn.send_data(stream_id, path, end_stream=True)
        await send()

    async with trio.open_nursery() as nursery:
        await send()
        while data := await stream.receive_some(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    nursery.start_soon(answer, event.stream_id, dict(event.headers)[b":path"])
            await send()
        nursery.cancel_scope.cancel()


def test_a_walker_leaving_keeps_the_requests_others_placed_on_its_connections(monkeypatch):
    """The walker that opened a connection leaves while another walker's request is on
    it, in flight or waiting for the connection to open: that request is answered (it
    was counted 'eof: the connection closed while opening'), and the leaving walker waits
    for it, no longer."""
    real_connect = net.connect

    async def slow_connect(*args: object, **kwargs: object) -> object:
        await trio.sleep(0.2)
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr(h2_session.net, "connect", slow_connect)

    async def main() -> dict:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        target = Target.from_url(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/")
        pool = h2_session.H2Pool(5.0)
        seen: dict = {}

        def fields(path: str) -> list:
            return request_fields("GET", path, target.host_header, "http", (), None)

        async def other(name: str, placed: trio.Event) -> None:
            await placed.wait()
            async with pool.member(target) as member:
                try:
                    seen[name] = (await member.request(fields(f"/{name}"), None)).body
                except net.TransportError as exc:
                    seen[name] = str(exc)

        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, _late_server, listeners)
            opening, in_flight = trio.Event(), trio.Event()
            async with trio.open_nursery() as walkers:
                walkers.start_soon(other, "opening", opening)
                async with pool.member(target) as host:
                    with trio.move_on_after(0.1):  # the host gives up while it opens
                        opening.set()
                        await host.request(fields("/host"), None)
                seen["host left (opening)"] = trio.current_time()
            async with trio.open_nursery() as walkers:
                walkers.start_soon(other, "in flight", in_flight)
                async with pool.member(target) as host:
                    seen["host"] = (await host.request(fields("/host"), None)).body
                    in_flight.set()
                    await trio.sleep(0.1)
                    left_at = trio.current_time()
                seen["host waited"] = trio.current_time() - left_at
            seen["opened"] = pool.opened
            nursery.cancel_scope.cancel()
        return seen

    async def bounded() -> dict:
        with trio.fail_after(10):
            return await main()

    seen = trio.run(bounded)
    assert seen["opening"] == b"/opening"
    assert seen["host"] == b"/host" and seen["in flight"] == b"/in flight"
    assert 0.1 < seen["host waited"] < 1.0  # until the other's answer (0.3 s), not forever
    assert seen["opened"] == 2  # one connection per host; nobody opened a spare


async def _two_streams_server(stream: trio.SocketStream) -> None:
    """An h2 server that allows 2 concurrent streams and announces it late (its SETTINGS
    0.1 s after the connection opened); h2 ends the connection on a third (RFC 9113 §5.1.2
    allows a PROTOCOL_ERROR for it). Answers each request 0.4 s after it came."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=False, header_encoding=None))
    conn.local_settings = h2.settings.Settings(client=False, initial_values={
        h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2})
    conn.initiate_connection()
    lock = trio.Lock()

    async def send() -> None:
        async with lock:
            await stream.send_all(conn.data_to_send())

    async def answer(stream_id: int) -> None:
        await trio.sleep(0.4)  # the connections stay full while the others open
        conn.send_headers(stream_id, [(b":status", b"200")], end_stream=True)
        await send()

    async with trio.open_nursery() as nursery:
        await trio.sleep(0.1)
        await send()
        while data := await stream.receive_some(65536):
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                await send()  # its GOAWAY
                break
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    nursery.start_soon(answer, event.stream_id)
            await send()
        nursery.cancel_scope.cancel()


def test_requests_wait_for_the_servers_settings():
    """A new connection takes requests once the server's SETTINGS arrived: sent before,
    more than its SETTINGS_MAX_CONCURRENT_STREAMS would be refused. Those that waited on
    it and found it full go to another connection without counting a failed attempt."""
    async def main() -> list:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        target = Target.from_url(f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/")
        fields = request_fields("GET", "/", target.host_header, "http", (), None)
        statuses: list = []

        async def one(member: h2_session.H2Member) -> None:
            try:
                statuses.append((await member.request(fields, None)).status)
            except net.TransportError as exc:
                statuses.append(str(exc))

        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, _two_streams_server, listeners)
            pool = h2_session.H2Pool(5.0)
            async with pool.member(target) as member, trio.open_nursery() as walkers:
                for _ in range(8):  # 4 rounds of 2: more than h2_session.ATTEMPTS
                    walkers.start_soon(one, member)
            nursery.cancel_scope.cancel()
        return statuses

    async def bounded() -> list:
        with trio.fail_after(10):
            return await main()

    assert trio.run(bounded) == [200] * 8
