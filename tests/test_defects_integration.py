"""Every HIGH predicate is proven twice end to end: `assay run` against the refapp with one
injected defect fails that predicate (and only what the defect really causes), and the
correct refapp passes (tests/test_run_integration.py). Each run is at most 20 s; shrinking
is left to the incident tests (tests/test_incidents.py) to keep these short."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.assay_cli import assay, only_results

pytestmark = pytest.mark.integration

# defect -> (invariants that must fail, invariants the defect may also legitimately fail)
CASES = {
    "accept-space-before-colon": ({"I-ADV-ACCEPTED"}, set()),
    # Taking the first of two lengths leaves the rest of the body to be parsed as a request.
    "accept-conflicting-content-length": ({"I-ADV-ACCEPTED"}, {"I-ADV-DESYNC"}),
    # Content-Length winning over chunked also keeps the connection open (RFC 9112 §6.3),
    # and takes an obfuscated Transfer-Encoding beside a length (te-*-cl) on an open one.
    "cl-te-desync": ({"I-ADV-DESYNC"}, {"I-ADV-MUST", "I-ADV-ACCEPTED"}),
    # A dead accept loop is also a liveness failure, and later sessions cannot connect.
    "h2c-crash": ({"I-H2C-CRASHED"}, {"I-LIVENESS", "I-MKV-TRANSPORT"}),
    "ws-accept-unmasked": ({"I-WS-ACCEPTED"}, set()),
    "ws-hang-on-bad-frame": ({"I-WS-HANG"}, set()),
    "sse-leak-on-reset": ({"I-SSE-LEAK"}, set()),
}
ADVERSARIAL = {"accept-space-before-colon", "accept-conflicting-content-length", "cl-te-desync"}
# A target that hangs or dies fails every slice that needs it; only the coordinator's own
# judgement is asserted for those, the rest may follow.
DEAD_TARGET = {
    "hang-after": "I-HANG",
    "crash-after": "I-LIVENESS",
}


def _failed(document: dict) -> set[str]:
    return {entry["id"] for entry in document["invariants"]["failed"]}


@pytest.mark.parametrize("defect", sorted(CASES))
def test_defect_fails_its_predicate_and_nothing_unrelated(defect: str, tmp_path: Path):
    must, may = CASES[defect]
    # The adversarial defects show on a few of the ~260 cases: twice the walkers (they mostly
    # wait on deadlines) let a 12 s run on a loaded 2-core machine deal the whole catalogue.
    walkers = "64" if defect in ADVERSARIAL else "32"
    # The ws walkers' 16 MiB messages can take a loaded machine's whole 12 s (4 sessions
    # were seen with two test workers): the torture defects get the walkers' time here;
    # large messages have their own tests (tests/test_ws_large*.py).
    large = ["--ws-max-message", "0"] if defect.startswith("ws-") else []
    # A hang is confirmed by re-sends that each wait out the hang deadline: when the seed's
    # case order deals the hanging case late (the walker ids moved when the h2 slices came),
    # a loaded machine's 12 s ended mid-confirmation (confirm_sent 4, judged 0).
    duration = "20s" if defect == "ws-hang-on-bad-frame" else "12s"
    result = assay("run", "--duration", duration, "--procs", "2", "--refapp-defect", defect,
                   "--concurrency", walkers, "--results", str(tmp_path), "--seed", "11",
                   "--no-shrink", *large)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = _failed(only_results(tmp_path))
    assert must <= failed, (failed, result.stdout)
    assert failed <= must | may, (failed, result.stdout)
    for invariant in must:
        assert invariant in result.stdout


@pytest.mark.parametrize("defect", sorted(DEAD_TARGET))
def test_dead_or_hung_target_is_judged_by_the_coordinator(defect: str, tmp_path: Path):
    result = assay("run", "--duration", "20s", "--procs", "2", "--refapp-defect", defect,
                   "--results", str(tmp_path), "--seed", "12", "--no-shrink")
    assert result.returncode == 1, result.stdout + result.stderr
    document = only_results(tmp_path)
    assert DEAD_TARGET[defect] in _failed(document), result.stdout
    trip = document["trips"]
    assert any(t["invariant"] == DEAD_TARGET[defect] for t in trip.values())
