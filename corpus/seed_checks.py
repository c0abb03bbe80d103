"""Registers the composite ``seed`` oracle in ``replay.checks``.

Importing this module is what makes a seed program judgeable by ``replay.checks.evaluate``
(``assay replay FILE`` of a saved seed program, the shrinker, ``assay corpus add FILE``). The
judging itself lives in ``corpus.oracles``; this module only adapts it to the registry's
``(params, transcript) -> CheckResult`` signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corpus.generator import SEED_ORACLE
from corpus.oracles import evaluate_seed
from replay.checks import PROGRAM_KEY, CheckResult, TranscriptLike, register


@register(SEED_ORACLE)
def seed(params: Mapping[str, Any], transcript: TranscriptLike) -> CheckResult:
    """Violated when any segment trips an invariant (see ``corpus.oracles``)."""
    verdict = evaluate_seed(params[PROGRAM_KEY], transcript)
    lines = [trip.line() for trip in verdict.trips]
    lines += [f"not judged: segment {seg:02d} [{kind}]: {why}"
              for seg, kind, why in verdict.not_judged]
    return CheckResult(not verdict.passed, verdict.summary() + (
        "\n" + "\n".join(lines) if lines else ""))
