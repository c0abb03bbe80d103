"""The whole adversarial catalogue against apache2 and lighttpd: only real MUST violations.

Each verdict asserted here was re-sent by hand, alone, on a fresh connection:

* apache2 2.4 processes an HTTP/1.0 request with ``Transfer-Encoding: chunked`` and keeps
  the connection (``Connection: keep-alive`` was asked); RFC 9112 §6.1: such a message
  MUST be treated as faulty framing "and close the connection after processing".
* lighttpd 1.4 answers the *same* Host line twice with 200 (RFC 9112 §3.2: more than one
  Host field line MUST get 400, the issue's finding); takes an empty ``Transfer-Encoding``
  beside a Content-Length with 200 (RFC 9112 §6.3 (4): 400, then close: accepted against
  the MUST, HIGH, though it closes after); and refuses an absolute-form request whose Host differs
  (§3.2.2: the Host MUST be ignored; a safe miss, LOW, reported but not failing).
* lighttpd's static handler answers every POST before reading its body and closes: the
  body-framing cases there are not judged (nothing was read), never "accepted".
"""

from __future__ import annotations

import pytest

from protocols.adversarial_cases import CASES
from tests.apt_servers import apache2, lighttpd
from tests.conformance_sweep import failing, sweep

pytestmark = pytest.mark.integration


def test_apache2_breaks_only_the_http10_transfer_encoding_rule() -> None:
    with apache2() as url:
        result = sweep(url, CASES, concurrency=8)
    assert result.high() == {}, failing(result)
    assert result.with_verdict("violation") == ["te-http10-chunked"], failing(result)
    assert result.tally.counters["adv.must_violation"] == 1


def test_lighttpd_duplicate_host_and_empty_transfer_encoding() -> None:
    with lighttpd() as url:
        result = sweep(url, CASES, concurrency=8)
    assert result.high() == {"adv.wrong_accepted": {"te-empty-cl", "te-empty-after-cl"}}, \
        failing(result)
    assert set(result.with_verdict("violation")) == {
        "host-duplicate-identical", "te-empty-cl", "te-empty-after-cl",
        "absolute-form-host-differs"}, failing(result)
    assert result.tally.counters["adv.must_violation"] == 1  # the LOW one does not count
    # The static handler answers POSTs unread: body cases are unjudged, none accepted.
    assert result.tally.counters["adv.baseline_answered_unread"] >= 1
    assert result.verdicts["chunk-size-bare-cr"] == "unjudged"
