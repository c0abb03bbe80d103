"""The pre-flight loop (coordinator.preflight.preflight) on a virtual clock: every probe is
full-length, and "broken" rests on BROKEN_CONFIRMATIONS of them in a row, even when the
first broken probe comes as the budget runs out."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio
import trio.testing

from actors.walker import Target
from coordinator import preflight as pf
from protocols.preflight import Behaviour, Finding

TARGET = Target.from_url("http://127.0.0.1:9/")


def _attempt(kind: str, at: float, took: float) -> pf.Attempt:
    if kind == "refused":
        return pf.Attempt("refused", None, at, None, None, took)
    behaviour = Behaviour.ANSWERED if kind == "answered" else Behaviour.SILENT
    return pf.Attempt("", Finding(behaviour, kind, None, 0, b""), at, 0.001, None, took)


def _run(script: Iterator[str], budget: float, probe: float,
         monkeypatch: pytest.MonkeyPatch) -> tuple[pf.Preflight, list[float]]:
    timeouts: list[float] = []

    async def fake_probe(target: Target, path: str, timeout: float) -> pf.Attempt:
        timeouts.append(timeout)
        kind = next(script)
        took = 0.01 if kind in ("refused", "answered") else timeout  # silence lasts it out
        started = trio.current_time()
        await trio.sleep(took)
        return _attempt(kind, started, took)

    monkeypatch.setattr(pf, "probe_answer", fake_probe)
    result = trio.run(pf.preflight, TARGET, "/", budget, probe,
                      clock=trio.testing.MockClock(autojump_threshold=0))
    return result, timeouts


def test_a_silent_target_gets_two_full_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    result, timeouts = _run(iter(["silent"] * 10), 5.0, 10.0, monkeypatch)
    assert timeouts == [10.0, 10.0]  # never cut to the 5 s budget
    assert len(result.broken_run) == pf.BROKEN_CONFIRMATIONS


def test_a_broken_probe_at_the_budget_end_is_confirmed_past_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Refused for the whole budget, then one silent probe: its confirmation still runs.
    script = iter(["refused"] * 19 + ["silent", "answered"])
    result, timeouts = _run(script, 5.0, 3.0, monkeypatch)
    assert result.last.answered  # the confirming probe found it answering: not broken
    assert set(timeouts) == {3.0}


def test_one_broken_probe_is_not_a_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    script = iter(["refused"] * 19 + ["silent", "refused"] + ["refused"] * 10)
    result, _ = _run(script, 5.0, 3.0, monkeypatch)
    assert len(result.broken_run) == 0 and not result.last.answered
