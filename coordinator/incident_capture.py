"""Stages 1 and 2 of an incident: the evidence as exact bytes, then forensics.

Separate from ``coordinator.incidents`` (which owns the trip, the task's order and the
dossier's ``incident.json``) because this is the part that reads the outside world: the
evidence rendering every byte string as base64 plus escaped text, the local process
captures (in a worker thread), the remote forensics agent, the target's own pages and the
target's commit. Each function takes the ``IncidentManager`` whose run it serves.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import trio

from actors.walker import Target
from coordinator import forensics

if TYPE_CHECKING:
    from coordinator.incidents import Incident, IncidentManager

#: Evidence fields rendered beside the JSON as raw files.
RAW_FIELDS = ("sent", "received", "canary_sent", "canary_received", "login_sent")


def render_bytes(value: bytes) -> dict[str, Any]:
    """Raw bytes as base64 plus an escaped printable rendering (CR/LF kept readable)."""
    text = value.decode("latin-1").encode("unicode_escape").decode("ascii")
    text = text.replace("\\r\\n", "\\r\\n\n")
    return {"base64": base64.b64encode(value).decode("ascii"), "text": text,
            "length": len(value)}


def render(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return render_bytes(bytes(value))
    if isinstance(value, Mapping):
        return {str(k): render(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(v) for v in value]
    return value


def is_local_host(host: str) -> bool:
    """Whether ``host`` is this machine (a pid only means something for a local target)."""
    if host in ("localhost", ""):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:
            address = ipaddress.ip_address(socket.gethostbyname(host))
        except (OSError, ValueError):
            return False
    if address.is_loopback or address.is_unspecified:
        return True
    try:
        mine = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values()
                for a in addrs}
    except (OSError, psutil.Error):
        return False
    return str(address) in mine


def _git_head(path: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


async def capture(manager: IncidentManager, incident: Incident) -> None:
    """Stages 1 and 2: the evidence as exact bytes and JSON, then the forensics captures."""
    began = time.time()
    dossier = forensics.Dossier(incident.root)
    ev = incident.detail.get("evidence")
    ev = dict(ev) if isinstance(ev, Mapping) else {}
    recent = ev.pop("recent", None)
    dossier.write_json("evidence.json", {"counter": incident.counter,
                                         "via": incident.detail.get("via", "violation"),
                                         "evidence": render(ev)})
    for name in RAW_FIELDS:
        raw = ev.get(name)
        if isinstance(raw, (bytes, bytearray)) and raw:
            dossier.write(f"evidence/{name}.bin", bytes(raw))
    if recent:
        dossier.write_json("recent.json", render(recent))
    else:
        dossier.missing("recent.json", "no recent exchanges in this evidence (a tally or "
                                       "health-probe trip carries none)")
    await _forensics(manager, dossier)
    dossier.write_status()
    missing = [c.name for c in dossier.captures if not c.ok]
    incident.stages["forensics"] = {
        "captured": sum(c.ok for c in dossier.captures), "missing": len(missing),
        "missing_files": missing[:50], "elapsed_s": round(time.time() - began, 3)}
    if not manager._commit_known:
        manager._commit_known = True
        manager._commit = await trio.to_thread.run_sync(_find_commit, manager)
    manager._write_incident(incident)


def _find_commit(manager: IncidentManager) -> str | None:
    if manager.settings.bisect_repo:
        return _git_head(Path(manager.settings.bisect_repo))
    if manager.builtin:
        return _git_head(Path(__file__).resolve().parent.parent)
    return None


async def _forensics(manager: IncidentManager, dossier: forensics.Dossier) -> None:
    settings = manager.settings
    target = Target.from_url(manager.target_url)
    urls: dict[str, str] = {}
    health = manager.run_settings.get("health_path")
    if isinstance(health, str):
        urls["health"] = forensics.absolute(manager.target_url, health)
    stats = manager.run_settings.get("stats_url")
    if isinstance(stats, str) and stats:
        urls["stats"] = forensics.absolute(manager.target_url, stats)
    for number, url in enumerate(settings.metrics_urls):
        urls[f"metrics-{number}"] = forensics.absolute(manager.target_url, url)
    pid = manager.target_pid
    local = pid is not None and is_local_host(target.host) and psutil.pid_exists(pid)

    async def process() -> None:
        if local:
            assert pid is not None
            await trio.to_thread.run_sync(
                lambda: forensics.capture_process(
                    pid, target.port, dossier, deadline_s=settings.forensics_deadline_s),
                abandon_on_cancel=True)
        elif settings.agent:
            from coordinator.agent import request_forensics

            await trio.to_thread.run_sync(
                lambda: request_forensics(settings.agent or "", dossier, pid=pid,
                                          port=target.port,
                                          budget_s=settings.forensics_deadline_s,
                                          server_key=settings.agent_server_key,
                                          client_key=settings.agent_client_key),
                abandon_on_cancel=True)
        else:
            if pid is not None and is_local_host(target.host):
                # Most often the trip is the death itself: nothing is left to read.
                dossier.missing("process/*", f"target pid {pid} has exited (no process "
                                             "left to capture)")
            else:
                why = "target pid unknown" if pid is None else \
                    f"target pid {pid} is not a local process"
                dossier.missing("process/*", f"{why}: pass --target-pid for a local "
                                             "target, or run `assay agent` beside a "
                                             "remote one and give --forensics-agent")

    with trio.move_on_after(settings.forensics_deadline_s + 5) as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(process)
            if urls:
                nursery.start_soon(forensics.snapshot_urls, dossier, urls)
    if scope.cancelled_caught:
        dossier.missing("forensics", "overall forensics deadline passed; later captures "
                                     "were abandoned")
