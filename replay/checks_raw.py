"""The read-after-write oracle (I-DRV-1) of a replayed program, and its JSON equality.

Separate from the other built-in oracles because it judges a whole sequence of raw
requests (writes, reads, deletes keyed by label) rather than one case's bytes, and keeps
its own record of what was written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from protocols.program import Action, Program
from replay.oracle_registry import (
    PROGRAM_KEY,
    CheckResult,
    TranscriptLike,
    register,
    responses,
)


@register("read_after_write")
def read_after_write(params: Mapping[str, Any], transcript: TranscriptLike) -> CheckResult:
    """Every field written by a 2xx ``raw:write:<key>`` must read back equal through the
    next 2xx ``raw:read:<key>`` (and such a read must not 404/410); a 2xx
    ``raw:delete:<key>`` forgets the record.

    A request's answer is the next read step on its connection; the written value is the
    JSON body of the request as sent (bodies carry no placeholders).
    """
    program: Program = params[PROGRAM_KEY]
    records: dict[str, dict[str, Any]] = {}
    pending: dict[int, tuple[str, str, bytes]] = {}  # conn -> (role, key, request)
    checks = 0
    for index, step in enumerate(program.steps):
        result = transcript.of_step(index)
        if step.action in (Action.SEND, Action.DRIP) and step.label.startswith("raw:"):
            _, role, key = [*step.label.split(":", 2), "", ""][:3]
            pending[step.conn] = (role, key, step.data)
            continue
        if step.action not in (Action.READ, Action.SLOW_READ) or step.conn not in pending:
            continue
        role, key, request = pending.pop(step.conn)
        found = responses(result.data) if result is not None else []
        if not found:
            if role == "write":
                records.pop(key, None)  # the write may or may not have happened
            continue
        status = found[0].status
        if role == "delete":
            if 200 <= status < 300:
                records.pop(key, None)
        elif role == "write":
            written = _json_body(request)
            if 200 <= status < 300 and isinstance(written, dict):
                records[key] = written
            else:
                records.pop(key, None)
        elif role == "read" and key in records:
            checks += 1
            expected = records[key]
            if status in (404, 410):
                return CheckResult(True, f"read of {key} got {status} after a 2xx write of "
                                         f"{json.dumps(expected, sort_keys=True)}")
            if 200 <= status < 300:
                actual = _json(found[0].body)
                wrong = [name for name, value in expected.items()
                         if not isinstance(actual, dict) or name not in actual
                         or not same_json(value, actual[name])]
                if wrong:
                    return CheckResult(True, f"read of {key} lost field(s) {wrong}: wrote "
                                             f"{json.dumps(expected, sort_keys=True)}, read "
                                             f"{found[0].body[:300]!r}")
    return CheckResult(False, f"{checks} read-after-write check(s) passed")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _json_body(request: bytes) -> Any:
    head_end = request.find(b"\r\n\r\n")
    return _json(request[head_end + 4:]) if head_end >= 0 else None


def same_json(expected: Any, actual: Any) -> bool:
    """JSON equality where objects compare as 'every expected member present and equal'."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and same_json(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(same_json(e, a) for e, a in zip(expected, actual, strict=True)))
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float)) and expected == actual
    return type(expected) is type(actual) and expected == actual
