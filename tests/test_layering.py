"""protocols/ is sans-IO: it must not import I/O or concurrency libraries."""

import ast
from pathlib import Path

FORBIDDEN = {"trio", "zmq", "socket", "subprocess", "asyncio", "selectors", "threading"}
ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_protocols_import_no_io():
    offenders = {}
    for path in sorted((ROOT / "protocols").glob("*.py")):
        bad = _imports(path) & FORBIDDEN
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}


def test_coordinator_and_actors_do_not_import_msgpack():
    for package in ("coordinator", "actors"):
        for path in (ROOT / package).glob("*.py"):
            assert "msgpack" not in _imports(path), path
