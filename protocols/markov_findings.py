"""What a Markov walk counts as a finding, and the example it keeps for the report.

Two findings: a status outside a state's ``expect`` (``markov.unexpected_status``) and a read
that does not return what was written (``markov.read_after_write_mismatch``, I-DRV-1). Each
counts every time and keeps one example with the request and response text. Separate from
the session because judging and reporting do not change the walk's state.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from protocols.markov_values import same_json

if TYPE_CHECKING:
    from protocols.http1 import Response
    from protocols.markov_plan import Plan, PlannedRequest
    from protocols.tally import Tally

_EXAMPLE_BODY_CHARS = 2048


def check_read(
    plan: Plan,
    planned: PlannedRequest,
    record: dict[str, Any],
    parsed: Any,
    response: Response,
    tally: Tally,
) -> None:
    """Judge a 2xx read against the write record (I-DRV-1): every recorded field, equal."""
    tally.incr("markov.read_after_write_checks")
    if not isinstance(parsed, dict) or any(
        name not in parsed or not same_json(value, parsed[name]) for name, value in record.items()
    ):
        count_mismatch(plan, planned, record, parsed, response, tally)


def count_mismatch(
    plan: Plan,
    planned: PlannedRequest,
    record: dict[str, Any],
    parsed: Any,
    response: Response,
    tally: Tally,
) -> None:
    """Count an I-DRV-1 mismatch; the first one keeps an example naming the fields."""
    counter = "markov.read_after_write_mismatch"
    tally.incr(counter)
    if counter in tally.examples:
        return
    if isinstance(parsed, dict):
        fields = [n for n, v in record.items() if n not in parsed or not same_json(v, parsed[n])]
    else:
        fields = sorted(record)
    tally.keep_example(
        counter,
        {
            "invariant": "I-DRV-1",
            "state": plan.name,
            "method": planned.method,
            "target": planned.target,
            "status": response.status,
            "expected": json.dumps(record, sort_keys=True),
            "mismatched_fields": fields,
            "actual_body": _text(response.body),
            "request": _text(planned.wire),
        },
    )


def count_unexpected(plan: Plan, planned: PlannedRequest, response: Response, tally: Tally) -> None:
    """Count a status outside the state's ``expect``; the first one keeps an example."""
    counter = "markov.unexpected_status"
    tally.incr(counter)
    if counter in tally.examples:
        return
    tally.keep_example(
        counter,
        {
            "state": plan.name,
            "method": planned.method,
            "target": planned.target,
            "expected": list(plan.expect.text),
            "status": response.status,
            "reason": _text(response.reason),
            "response_headers": [[_text(n), _text(v)] for n, v in response.headers],
            "response_body": _text(response.body),
            "request": _text(planned.wire),
        },
    )


def _text(data: bytes) -> str:
    return data[: _EXAMPLE_BODY_CHARS * 2].decode("utf-8", "replace")
