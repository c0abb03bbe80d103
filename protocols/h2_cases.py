"""The HTTP/2 torture catalogue (the ``h2`` slice): every case, in h2spec's groups.

The cases are data (``protocols.h2_case_model.H2Case``) split by layer:
``h2_cases_frames`` (preface, frame sizes, SETTINGS, PING, GOAWAY, flow control,
extensions), ``h2_cases_streams`` (stream states, RST_STREAM, CONTINUATION) and
``h2_cases_http`` (HPACK decoding errors, RFC 9113 §8 message rules).
"""

from __future__ import annotations

from protocols.h2_case_model import H2Case
from protocols.h2_cases_frames import CASES as FRAME_CASES
from protocols.h2_cases_http import CASES as HTTP_CASES
from protocols.h2_cases_streams import CASES as STREAM_CASES

CASES: tuple[H2Case, ...] = (*FRAME_CASES, *STREAM_CASES, *HTTP_CASES)
BY_NAME: dict[str, H2Case] = {case.name: case for case in CASES}
