"""Forensics: what the target process looked like right after a HIGH trip, bounded and honest.

How this works: a ``Dossier`` is a directory plus a ledger. Every capture goes through it:
``write(name, data)`` stores at most ``cap`` bytes (and says so when it cut), ``missing(name,
why)`` records what could not be had. ``status_text()`` renders the ledger as
``forensics_status.txt``; nothing is silently absent.

``capture_process`` (blocking; the incident path runs it in a worker thread) reads the
target's /proc files, fds, threads, kernel stacks, ``ss`` sockets for its port, a psutil
summary and, for a Python target, a ``py-spy dump``. Each source is read under its own
small timeout and size cap, and the whole call has a deadline; a pid that vanishes midway,
a file the kernel refuses, or a tool that is not installed becomes a ``missing`` line with
the reason, never an exception. ``snapshot_urls`` fetches the target's own health/metrics
pages the same way (a target that stops answering mid-capture costs one timeout).

The same ``capture_process`` answers a remote coordinator through ``coordinator.agent``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import trio

from actors import net
from actors.walker import Target

#: Largest file a capture may write.
FILE_CAP = 1024 * 1024
#: Per-command timeout (ss, py-spy).
TOOL_TIMEOUT_S = 5.0
#: Whole-process capture deadline.
PROCESS_DEADLINE_S = 15.0
URL_TIMEOUT_S = 2.0
MAX_FDS = 4096
MAX_THREADS = 256
PROC_FILES = ("status", "limits", "smaps_rollup", "maps", "stat", "wchan", "cmdline", "io",
              "sched", "stack")


@dataclass(frozen=True)
class Capture:
    """One line of the ledger."""

    name: str
    ok: bool
    reason: str = ""
    size: int = 0
    elapsed_s: float = 0.0

    def line(self) -> str:
        if self.ok:
            extra = f"  ({self.reason})" if self.reason else ""
            return f"ok       {self.name:<28} {self.size:>9} B {self.elapsed_s * 1000:>8.1f} ms" \
                   f"{extra}"
        return f"missing  {self.name:<28} {self.reason}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "ok": self.ok}
        if self.reason:
            out["reason"] = self.reason
        if self.ok:
            out["bytes"] = self.size
        return out


class Dossier:
    """A directory of captures with a ledger of what was (not) captured, and why."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.captures: list[Capture] = []
        root.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, data: bytes | str, *, cap: int = FILE_CAP,
              elapsed_s: float = 0.0, ledger: bool = True) -> Capture:
        raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
        note = ""
        if len(raw) > cap:
            note = f"truncated from {len(raw)} bytes"
            raw = raw[:cap]
        path = self.root / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(raw)
            os.replace(tmp, path)
        except OSError as exc:
            return self._add(Capture(name, False, f"cannot write: {exc.strerror or exc}"),
                             ledger)
        return self._add(Capture(name, True, note, len(raw), elapsed_s), ledger)

    def write_json(self, name: str, document: Any, *, ledger: bool = True) -> Capture:
        text = json.dumps(document, indent=2, sort_keys=True, default=str)
        return self.write(name, text + "\n", cap=8 * FILE_CAP, ledger=ledger)

    def missing(self, name: str, reason: str) -> Capture:
        return self._add(Capture(name, False, reason), True)

    def extend(self, captures: Iterable[Capture]) -> None:
        self.captures.extend(captures)

    def _add(self, capture: Capture, ledger: bool) -> Capture:
        if ledger:
            self.captures.append(capture)
        return capture

    def status_text(self) -> str:
        ok = sum(c.ok for c in self.captures)
        lines = [f"# forensics: {ok} captured, {len(self.captures) - ok} missing",
                 *(c.line() for c in self.captures)]
        return "\n".join(lines) + "\n"

    def write_status(self) -> None:
        self.write("forensics_status.txt", self.status_text(), ledger=False)


# -- the local process ----------------------------------------------------------------------


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def _why(exc: BaseException, pid: int) -> str:
    if isinstance(exc, (FileNotFoundError, ProcessLookupError, psutil.NoSuchProcess)):
        return f"process {pid} vanished"
    if isinstance(exc, (PermissionError, psutil.AccessDenied)):
        return "permission denied (needs the target's user, root or CAP_SYS_PTRACE)"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return f"{type(exc).__name__}: {exc}"


def _read_capped(path: Path, cap: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(cap + 1)


def capture_process(
    pid: int,
    port: int | None,
    dossier: Dossier,
    *,
    deadline_s: float = PROCESS_DEADLINE_S,
    environ: Mapping[str, str] | None = None,
    prefix: str = "process/",
) -> list[Capture]:
    """Capture what the kernel and tools can tell about ``pid``; blocking, bounded.

    Returns the ledger lines it added (also kept in ``dossier.captures``).
    """
    env = dict(os.environ if environ is None else environ)
    start = len(dossier.captures)
    deadline = _Deadline(deadline_s)
    proc_dir = Path(f"/proc/{pid}")
    if not psutil.pid_exists(pid) or not proc_dir.exists():
        for name in (*PROC_FILES, "fds.txt", "threads.txt", "psutil.json", "sockets.txt",
                     "py-spy.txt"):
            dossier.missing(prefix + name, f"process {pid} does not exist (exited or vanished)")
        return dossier.captures[start:]
    if _is_zombie(pid):
        dossier.write(prefix + "status", _read_capped(proc_dir / "status", FILE_CAP))
        for name in (*PROC_FILES[1:], "fds.txt", "threads.txt", "psutil.json", "sockets.txt",
                     "py-spy.txt"):
            dossier.missing(prefix + name, f"process {pid} has exited (a zombie its parent "
                                           "has not reaped): nothing left to inspect")
        return dossier.captures[start:]
    steps: list[tuple[str, Callable[[], bytes | str]]] = []
    for name in PROC_FILES:
        steps.append((name, lambda n=name: _proc_file(proc_dir / n, n)))
    steps += [
        ("fds.txt", lambda: _fds(proc_dir)),
        ("threads.txt", lambda: _threads(proc_dir)),
        ("psutil.json", lambda: _psutil_summary(pid)),
    ]
    for name, read in steps:
        if deadline.left() <= 0:
            dossier.missing(prefix + name, f"capture deadline ({deadline_s:g} s) passed")
            continue
        began = time.monotonic()
        try:
            data = read()
        except _Missing as exc:
            dossier.missing(prefix + name, str(exc))
            continue
        except Exception as exc:  # any OS/psutil failure is a ledger line, not a crash
            dossier.missing(prefix + name, _why(exc, pid))
            continue
        if not data:
            dossier.missing(prefix + name, "empty (the kernel exposes nothing here)")
            continue
        dossier.write(prefix + name, data, elapsed_s=time.monotonic() - began)
    _tool(dossier, prefix + "sockets.txt", _ss_argv(port), env, deadline,
          skip="no target port known" if port is None else "")
    python = _is_python(pid)
    _tool(dossier, prefix + "py-spy.txt", ["py-spy", "dump", "--pid", str(pid)], env, deadline,
          skip="" if python else "target is not a Python process")
    return dossier.captures[start:]


class _Missing(Exception):
    """A source that is legitimately unavailable (the message is the reason)."""


def _proc_file(path: Path, name: str) -> bytes:
    data = _read_capped(path, FILE_CAP)
    if name == "cmdline":
        data = data.replace(b"\0", b" ").strip()
    return data


def _fds(proc_dir: Path) -> str:
    entries = sorted(os.listdir(proc_dir / "fd"), key=lambda n: int(n) if n.isdigit() else 0)
    lines = [f"# {len(entries)} open file descriptors"]
    for name in entries[:MAX_FDS]:
        try:
            lines.append(f"{name:>6} -> {os.readlink(proc_dir / 'fd' / name)}")
        except OSError as exc:
            lines.append(f"{name:>6} -> ({exc.strerror})")
    if len(entries) > MAX_FDS:
        lines.append(f"# ... {len(entries) - MAX_FDS} more")
    return "\n".join(lines) + "\n"


def _threads(proc_dir: Path) -> str:
    tids = sorted(os.listdir(proc_dir / "task"), key=lambda n: int(n) if n.isdigit() else 0)
    lines = [f"# {len(tids)} threads"]
    for tid in tids[:MAX_THREADS]:
        task = proc_dir / "task" / tid
        fields = []
        for name in ("comm", "wchan", "stat"):
            try:
                fields.append(_read_capped(task / name, 4096).decode("utf-8", "replace").strip())
            except OSError as exc:
                fields.append(f"({exc.strerror})")
        lines.append(f"tid {tid} comm={fields[0]!r} wchan={fields[1]!r}")
        lines.append(f"    stat: {fields[2]}")
        try:
            stack = _read_capped(task / "stack", 16384).decode("utf-8", "replace").rstrip()
            lines += ["    " + line for line in stack.splitlines()] or ["    (empty stack)"]
        except OSError as exc:
            lines.append(f"    kernel stack: {exc.strerror or exc}")
    return "\n".join(lines) + "\n"


def _psutil_summary(pid: int) -> str:
    process = psutil.Process(pid)
    summary: dict[str, Any] = {"pid": pid}
    probes: dict[str, Callable[[], Any]] = {
        "name": process.name,
        "exe": process.exe,
        "cmdline": process.cmdline,
        "status": process.status,
        "create_time": process.create_time,
        "cpu_times": lambda: process.cpu_times()._asdict(),
        "memory_full_info": lambda: process.memory_full_info()._asdict(),
        "num_threads": process.num_threads,
        "num_fds": process.num_fds,
        "num_ctx_switches": lambda: process.num_ctx_switches()._asdict(),
        "connections": lambda: [
            {"fd": c.fd, "status": c.status, "laddr": list(c.laddr) if c.laddr else None,
             "raddr": list(c.raddr) if c.raddr else None}
            for c in process.net_connections(kind="inet")[:1024]],
        "children": lambda: [c.pid for c in process.children()],
        "rlimit_nofile": lambda: list(process.rlimit(psutil.RLIMIT_NOFILE)),
    }
    for key, probe in probes.items():
        try:
            summary[key] = probe()
        except psutil.NoSuchProcess:
            raise
        except Exception as exc:
            summary[key] = {"unavailable": _why(exc, pid)}
    return json.dumps(summary, indent=2, default=str) + "\n"


def _is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _ss_argv(port: int | None) -> list[str]:
    return ["ss", "-tanpie", "state", "all", f"( sport = :{port} or dport = :{port} )"]


def _is_python(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        names = [process.name(), *process.cmdline()[:1]]
    except (psutil.Error, OSError):
        return False
    return any("python" in os.path.basename(name).lower() for name in names)


def _tool(dossier: Dossier, name: str, argv: list[str], env: Mapping[str, str],
          deadline: _Deadline, *, skip: str = "") -> Capture:
    if skip:
        return dossier.missing(name, skip)
    exe = shutil.which(argv[0], path=env.get("PATH", ""))
    if exe is None:
        return dossier.missing(name, f"{argv[0]} not found on PATH")
    budget = min(TOOL_TIMEOUT_S, deadline.left())
    if budget <= 0:
        return dossier.missing(name, "capture deadline passed")
    began = time.monotonic()
    try:
        done = subprocess.run([exe, *argv[1:]], capture_output=True, timeout=budget,
                              env=dict(env), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return dossier.missing(name, f"{argv[0]} did not finish within {budget:.1f} s")
    except OSError as exc:
        return dossier.missing(name, f"{argv[0]} could not run: {exc.strerror or exc}")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
        return dossier.missing(name, f"{argv[0]} exited {done.returncode}: "
                                     f"{tail[-1][:200] if tail else 'no output'}")
    return dossier.write(name, done.stdout, elapsed_s=time.monotonic() - began)


# -- the target's own pages -----------------------------------------------------------------


async def fetch(url: str, timeout: float = URL_TIMEOUT_S, cap: int = FILE_CAP) -> bytes:
    """GET ``url`` (http://) with Connection: close; the raw response, or ``_Missing``."""
    target = Target.from_url(url)
    path = target.base_path + (f"?{url.split('?', 1)[1]}" if "?" in url else "")
    request = (f"GET {path} HTTP/1.1\r\nHost: {target.host_header}\r\nConnection: close\r\n"
               "User-Agent: assay-forensics\r\n\r\n").encode("latin-1")
    try:
        stream = await net.connect(target, timeout)
    except net.TransportError as exc:
        raise _Missing(f"connect failed: {exc.cause}") from None
    try:
        await net.send_all(stream, request, timeout)
        result = await net.read_until(stream, timeout, cap)
    except net.TransportError as exc:
        raise _Missing(f"{exc.cause} while fetching") from None
    finally:
        await net.aclose_quietly(stream)
    if result.ending is net.Ending.TIMEOUT:
        raise _Missing(f"no complete answer within {timeout:g} s "
                       f"({len(result.data)} bytes read)")
    if not result.data:
        raise _Missing(f"closed without an answer ({result.ending.value})")
    return result.data


async def snapshot_urls(dossier: Dossier, urls: Mapping[str, str],
                        timeout: float = URL_TIMEOUT_S) -> list[Capture]:
    """Fetch each ``name -> url`` concurrently into ``target/<name>.http``."""
    found: list[Capture] = []

    async def one(name: str, url: str) -> None:
        began = time.monotonic()
        file_name = f"target/{name}.http"
        try:
            with trio.fail_after(timeout + 0.5):
                data = await fetch(url, timeout)
        except _Missing as exc:
            found.append(dossier.missing(file_name, f"{url}: {exc}"))
            return
        except (trio.TooSlowError, ValueError, OSError) as exc:
            found.append(dossier.missing(file_name, f"{url}: {type(exc).__name__} {exc}"))
            return
        found.append(dossier.write(file_name, data, elapsed_s=time.monotonic() - began))

    async with trio.open_nursery() as nursery:
        for name, url in urls.items():
            nursery.start_soon(one, name, url)
    return found


def absolute(target_url: str, url_or_path: str) -> str:
    """A stats/metrics setting (URL or path) resolved against the target's origin."""
    if "://" in url_or_path:
        return url_or_path
    target = Target.from_url(target_url)
    path = url_or_path if url_or_path.startswith("/") else "/" + url_or_path
    return f"{target.scheme}://{target.host_header}{path}"
