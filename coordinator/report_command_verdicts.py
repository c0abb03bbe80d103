"""The verdicts ``assay watch`` and ``assay proxy`` keep in their own results blocks.

How this works: those two commands judge outside the tally invariants, so their verdicts
are not in the document's ``invariants`` lists: ``watch`` holds ``verdicts`` (I-RECONF-FAIL
and the informational ``keepalive_kept``) and ``failure_windows``; ``proxy`` holds
``verdicts`` (I-PROXY-DESYNC/REWRITE/ALTERED/HOP), ``findings`` (the bytes sent, the answer, what
the backend received) and ``reproducers``, plus ``collected``/``fetch_errors`` when the
backends could not be asked. This module reads those blocks as they are, defensively, into
one shape that ``junit`` and ``report_failures`` both show: without it junit.xml would be
an all-green suite and report.html would say "no invariant failed" for a failed watch or
proxy run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coordinator import report_data as data
from protocols.proxy_cases import CASES as PROXY_CASES

#: The result blocks read here, in the order they are shown.
BLOCKS = ("watch", "proxy")
#: Proxy case name -> the RFC section and sentence it rests on (shown with its finding).
PROXY_RFC = {case.name: (case.rfc, case.quote) for case in PROXY_CASES}


@dataclass(frozen=True)
class CommandVerdict:
    """One verdict of a command block.

    ``status`` is the block's own word: ``failed`` and ``passed`` for a judged invariant,
    ``not_judged`` (ours) for a proxy verdict whose backends were not all read, anything
    else (``kept``, ``reconnected``) for an informational line that never fails.
    """

    block: str
    id: str
    severity: str
    meaning: str
    status: str
    detail: str
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def fails_run(self) -> bool:
        """Only a HIGH verdict fails a watch or proxy run (``watch_run``/``proxy_run``:
        I-PROXY-HOP, MEDIUM, is reported and the run still exits 0)."""
        return self.failed and self.severity == "HIGH"

    @property
    def note(self) -> str:
        return "" if not self.failed or self.fails_run else \
            "reported: a MEDIUM verdict does not fail the run"


def command_verdicts(document: Mapping[str, Any]) -> list[CommandVerdict]:
    """Every verdict of the ``watch`` and ``proxy`` blocks (empty for other documents, and
    for a block written mid-run, before judging). A proxy verdict that passed while some
    backend's records were never read judged nothing: it is ``not_judged``, not a pass (a
    finding from the backends that were read still fails)."""
    found: list[CommandVerdict] = []
    unread = {block for block, _message in command_errors(document)}
    for key in BLOCKS:
        block = data.as_dict(document.get(key))
        for entry in data.as_list(block.get("verdicts")):
            if not isinstance(entry, dict):
                continue
            verdict_id = str(entry.get("id", "?"))
            status = str(entry.get("status", "?"))
            if key in unread and status == "passed":
                status = "not_judged"
            examples = (_proxy_examples(block, verdict_id) if key == "proxy"
                        else _watch_examples(block) if entry.get("status") == "failed"
                        else [])
            found.append(CommandVerdict(
                key, verdict_id, str(entry.get("severity", "")), str(entry.get("meaning", "")),
                status, _detail(entry), examples))
    return found


def command_errors(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(block, message) for each reason a block's verdicts cannot be trusted as a pass:
    the proxy run ended before the backends' records were read, or a backend could not be
    asked (``proxy_run`` never passes such a run)."""
    errors: list[tuple[str, str]] = []
    block = document.get("proxy")
    if isinstance(block, dict) and block.get("verdicts") is not None:
        if block.get("collected") is False:
            errors.append(("proxy", "not judged: the run ended before the backends' "
                                    "records were read"))
        for port, error in data.as_dict(block.get("fetch_errors")).items():
            errors.append(("proxy", f"backend {port} could not be asked: {error}"))
    return errors


def _detail(entry: Mapping[str, Any]) -> str:
    """The counts a verdict carries (``failed_requests``, ``findings``, ``front_changed``)."""
    skip = {"id", "severity", "meaning", "status"}
    return ", ".join(f"{k} {v}" for k, v in entry.items()
                     if k not in skip and not isinstance(v, (dict, list)))


def _proxy_examples(block: Mapping[str, Any], verdict_id: str) -> list[dict[str, Any]]:
    """The findings of one proxy invariant, each with its bytes (sent, the client's
    answer, what the backend received), the RFC section and sentence its case rests on
    (``protocols.proxy_cases``) and the reproducer file of its case."""
    reproducers = data.as_dict(block.get("reproducers"))
    examples = []
    for finding in data.as_list(block.get("findings")):
        if isinstance(finding, dict) and finding.get("invariant") == verdict_id:
            example = {k: v for k, v in finding.items() if k not in ("invariant", "severity")}
            rfc, quote = PROXY_RFC.get(str(finding.get("case")), (None, None))
            if rfc is not None:
                example.setdefault("rfc", rfc)
                example.setdefault("quote", quote)
            repro = reproducers.get(str(finding.get("case")))
            if isinstance(repro, str):
                example["reproducer"] = repro
            examples.append(example)
    return examples


def _watch_examples(block: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The failure windows that held a request counted against the proxy."""
    return [w for w in data.as_list(block.get("failure_windows"))
            if isinstance(w, dict) and w.get("counted")]
