"""The adversarial catalogue's request-framing cases, sent through a proxy by ``assay proxy``.

How this works: every case of ``protocols.cases_length`` and ``protocols.cases_chunked``
that hides a complete request in its bytes (``smuggles``: Content-Length/Transfer-Encoding
conflicts, obfuscated Transfer-Encodings, malformed chunk sizes, overflowing lengths) is
built with its own target ``/assay-proxy/RUN/CASE``. The catalogue's hidden request always
goes to the fixed ``/assay-smuggled``, so to tell which case (and which run) smuggled it,
its target is rewritten to ``/assay-smuggled/RUN/CASE`` *without changing a single length*:
the case is built with a Host padded by exactly the characters the marker adds, and the
hidden request is swapped for one with the marked target and the short Host. Every
Content-Length and chunk size the builders computed still counts the same octets, so each
case frames exactly as the catalogue meant. The marker sits in the target, which a proxy
that (wrongly) forwards the hidden request as a request keeps (RFC 9110 §7.6: "A proxy MUST
NOT modify the "absolute-path" and "query" parts of the received target"), even where it
rewrites Host.

What the RFC lets a proxy do with these bytes (reject them, or frame them one permitted way)
never turns the hidden request into a request: that only happens when the proxy and the
backend disagree on framing, which ``protocols.proxy_oracle`` reports as I-PROXY-DESYNC.
"""

from __future__ import annotations

from collections.abc import Callable

from protocols import cases_chunked, cases_length
from protocols.case_builders import smuggled_request
from protocols.case_model import SMUGGLED_PATH, AdversarialCase
from protocols.proxy_cases import CASES as OWN_CASES
from protocols.proxy_cases import SMUGGLED_PREFIX, ProxyCase, own_target, smuggled_target

#: Host of the marked hidden request; the case is built with it padded to keep lengths.
HIDDEN_HOST = "backend"

assert SMUGGLED_PATH == SMUGGLED_PREFIX, "both sides must name the same hidden target"


def marked_builder(adversarial: AdversarialCase) -> Callable[[str, str], bytes]:
    """``build(run, case) -> bytes``: the catalogue case with its hidden request marked."""

    def build(run: str, name: str) -> bytes:
        marked_target = smuggled_target(run, name)
        padded = HIDDEN_HOST + "x" * (len(marked_target) - len(SMUGGLED_PATH))
        data = adversarial.build(padded, own_target(run, name))
        hidden = smuggled_request(padded)
        marked = smuggled_request(HIDDEN_HOST).replace(SMUGGLED_PATH.encode(),
                                                        marked_target.encode(), 1)
        if hidden not in data:
            raise ValueError(f"{adversarial.name}: no hidden request in its bytes")
        return data.replace(hidden, marked)

    return build


def from_catalogue(adversarial: AdversarialCase) -> ProxyCase:
    return ProxyCase(adversarial.name, adversarial.rfc, adversarial.quote,
                     marked_builder(adversarial), smuggles=True)


#: The catalogue's framing cases that carry a hidden request.
CATALOGUE: tuple[ProxyCase, ...] = tuple(
    from_catalogue(c) for c in cases_length.CASES + cases_chunked.CASES if c.smuggles)

#: Everything ``assay proxy`` sends: its own six cases, then the catalogue's.
ALL_CASES: tuple[ProxyCase, ...] = OWN_CASES + CATALOGUE
