"""report.html in a real browser: headless Chromium, no console error, the failing case shown.

How this works: Chromium starts headless with ``--remote-debugging-port=0`` and prints the
DevTools WebSocket URL on stderr; the test drives it over the DevTools protocol with the
project's own trio + wsproto (no new dependency): it opens a page, enables the Runtime, Log
and Page domains, loads the report from a file:// URL, collects every uncaught exception,
``console.error`` and error log entry, reads the rendered DOM, and saves a full-page
screenshot to ``tests/artifacts/`` (or ``$ASSAY_TEST_ARTIFACTS``). The fixture's failing
case carries a received body with a ``<script>`` and an ``<img onerror>`` that both call
``console.error``: were the page to inject target bytes instead of escaping them, this test
would see the error. Skipped where ``chromium`` is missing, unless ASSAY_REQUIRE_CHROMIUM=1.
Every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage

from coordinator.reports import write_reports

FIXTURES = Path(__file__).parent / "fixtures" / "report"
CHROMIUM = shutil.which("chromium")
BROWSER_TIMEOUT_S = 40.0

if CHROMIUM is None and os.environ.get("ASSAY_REQUIRE_CHROMIUM") != "1":
    pytest.skip("chromium not installed (ASSAY_REQUIRE_CHROMIUM=1 makes this a failure)",
                allow_module_level=True)

#: What the page must show, read from the rendered DOM.
DOM_PROBE = """JSON.stringify({
  sections: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
  title: document.title,
  svgs: document.querySelectorAll('svg.chart').length,
  failures: (document.getElementById('failures') || {innerText: ''}).innerText,
  scripts: document.scripts.length,
  images: document.images.length,
})"""


class DevTools:
    """A minimal DevTools protocol client: one WebSocket, commands matched to replies by
    id, events kept for the test to read."""

    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self.stream, self.ws = stream, ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.replies: dict[int, dict[str, Any]] = {}
        self.partial = ""

    @classmethod
    async def connect(cls, url: str) -> DevTools:
        parts = urlsplit(url)
        stream = await trio.open_tcp_stream(parts.hostname or "127.0.0.1", parts.port or 80)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host=parts.netloc, target=parts.path)))
        client = cls(stream, ws)
        while True:
            events = await client._receive()
            if any(isinstance(e, AcceptConnection) for e in events):
                return client

    async def _receive(self) -> list[Any]:
        data = await self.stream.receive_some(1 << 20)
        if not data:
            raise ConnectionError("DevTools closed the connection")
        self.ws.receive_data(data)
        events = list(self.ws.events())
        for event in events:
            if isinstance(event, TextMessage):
                self.partial += event.data
                if event.message_finished:
                    self._dispatch(json.loads(self.partial))
                    self.partial = ""
            elif isinstance(event, CloseConnection):
                raise ConnectionError("DevTools closed the WebSocket")
            elif isinstance(event, Message):
                pass
        return events

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "id" in message:
            self.replies[message["id"]] = message
        else:
            self.events.append(message)

    async def call(self, method: str, session: str | None = None, **params: Any
                   ) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self.stream.send_all(self.ws.send(Message(data=json.dumps(message))))
        while ident not in self.replies:
            await self._receive()
        reply = self.replies.pop(ident)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def wait_event(self, method: str) -> dict[str, Any]:
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            await self._receive()


def devtools_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    for _ in range(400):
        line = process.stderr.readline()
        if not line:
            break
        if "DevTools listening on " in line:
            return line.split("DevTools listening on ", 1)[1].strip()
    raise AssertionError("chromium printed no DevTools URL")


async def render(url: str, devtools: str) -> tuple[dict[str, Any], list[str], bytes]:
    client = await DevTools.connect(devtools)
    target = await client.call("Target.createTarget", url="about:blank")
    attached = await client.call("Target.attachToTarget", targetId=target["targetId"],
                                 flatten=True)
    session = attached["sessionId"]
    for domain in ("Runtime", "Log", "Page"):
        await client.call(f"{domain}.enable", session)
    await client.call("Page.navigate", session, url=url)
    await client.wait_event("Page.loadEventFired")
    await client.call("Runtime.evaluate", session, expression="1", awaitPromise=True)
    probe = await client.call("Runtime.evaluate", session, expression=DOM_PROBE,
                              returnByValue=True)
    dom = json.loads(probe["result"]["value"])
    shot = await client.call("Page.captureScreenshot", session, format="png",
                             captureBeyondViewport=True)
    errors = []
    for event in client.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(json.dumps(params.get("exceptionDetails", {}))[:300])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            errors.append(json.dumps(params.get("args", []))[:300])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", "")[:300])
    await client.stream.aclose()
    return dom, errors, base64.b64decode(shot["data"])


def artifacts_dir() -> Path:
    path = Path(os.environ.get("ASSAY_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_the_failing_run_report_renders_in_chromium_without_errors(tmp_path: Path) -> None:
    assert CHROMIUM is not None, "chromium is required (ASSAY_REQUIRE_CHROMIUM=1)"
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURES / "failing_run", run_dir)
    assert run_dir / "report.html" in write_reports(run_dir)
    profile = tempfile.mkdtemp(prefix="assay-chromium-", dir=tmp_path)
    process = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", "--disable-sync",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         f"--user-data-dir={profile}", "--window-size=1200,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # readline() has no deadline of its own: a Chromium that hangs before printing its
    # DevTools URL is killed, which ends the read with EOF (and an assertion), not a hang.
    watchdog = threading.Timer(BROWSER_TIMEOUT_S, process.kill)
    watchdog.start()
    try:
        try:
            url = devtools_url(process)
        finally:
            watchdog.cancel()

        async def bounded() -> tuple[dict[str, Any], list[str], bytes]:
            with trio.fail_after(BROWSER_TIMEOUT_S):
                return await render((run_dir / "report.html").as_uri(), url)

        dom, errors, png = trio.run(bounded)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    (artifacts_dir() / "report-failing-run.png").write_bytes(png)
    assert errors == []
    assert {"verdict", "timeline", "latency", "invariants", "failures", "counters"} <= \
        set(dom["sections"])
    assert dom["title"] == "assay run fixture-refapp: FAILED"
    assert dom["svgs"] >= 3
    assert dom["scripts"] == 0 and dom["images"] == 0  # the target's markup stayed text
    assert "I-ADV-DESYNC" in dom["failures"] and "cl-te-smuggle" in dom["failures"]
    assert "<script>console.error('injected')</script>" in dom["failures"]  # shown as text
    assert "Transfer-Encoding: chunked" in dom["failures"]
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
