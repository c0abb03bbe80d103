"""RFC requirements as data, and which catalogue entries test each one.

How this works: ``REQUIREMENTS`` (built from ``protocols.rfc9112_requirements`` and
``protocols.rfc9110_requirements``) holds one ``RfcRequirement`` per MUST/SHOULD (and the
few MAYs a case tests) of RFC 9112 and of RFC 9110's message rules: section, keyword, who
it binds, a short verbatim quote, and ``match``, lower-case phrases of the sentence it
rests on. A catalogue entry (an adversarial case, a response rule, anything with ``rfc``
and ``quote``) tests a requirement when its ``rfc`` names the same section (and the same
numbered item, when both give one) and its quote contains one of the requirement's
phrases; a requirement without phrases is the only one of its section and takes every
entry there. ``coverage`` is that relation, computed, so the conformance document
(``coordinator.conformance_doc``) never drifts from the catalogue.

Only requirements a server can be observed to break from the client side are ``testable``;
requirements on clients, user agents, proxies and intermediaries are listed for
completeness and never counted as gaps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

#: Parties a black-box client can observe breaking a requirement.
SERVER_PARTIES = frozenset({"server", "origin server", "recipient", "sender (response)"})
#: A phrase this long names one sentence: it matches a quote whatever section the entry cites.
SPECIFIC = 24
_REF = re.compile(r"RFC\s*(\d+)\s*§\s*([0-9]+(?:\.[0-9]+)*)(?:\s*\((\d+)\))?")


@dataclass(frozen=True, slots=True)
class RfcRequirement:
    """One requirement sentence of an RFC."""

    #: Stable identifier, e.g. ``9112-3.2-host-400``.
    id: str
    #: ``RFC 9112``.
    rfc: str
    #: ``§3.2``; ``item`` is the numbered list item, e.g. ``(5)`` in §6.3, or "".
    section: str
    item: str
    #: RFC 2119 keyword as written (MUST, MUST NOT, SHOULD, SHOULD NOT, MAY, RECOMMENDED);
    #: ``ABNF`` for a grammar rule and ``DEF`` for a definition without a keyword that a
    #: case's bytes or a response can still break (a 204 "cannot contain content").
    keyword: str
    #: Whom it binds: server, origin server, recipient, sender (response), client, user
    #: agent, proxy, intermediary, sender (request).
    party: str
    quote: str
    match: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.rfc} {self.section}" + (f" {self.item}" if self.item else "")

    @property
    def testable(self) -> bool:
        return self.party in SERVER_PARTIES


def req(rfc: str, section: str, keyword: str, party: str, quote: str, *match: str,
        item: str = "", slug: str = "") -> RfcRequirement:
    """Shorthand for the data modules: ``req("9112", "3.2", "MUST", "server", ...)``."""
    name = slug or re.sub(r"[^a-z0-9]+", "-", (match[0] if match else keyword).lower())
    ident = f"{rfc}-{section}{'-' + item.strip('()') if item else ''}-{name.strip('-')}"
    return RfcRequirement(ident, f"RFC {rfc}", f"§{section}", item, keyword, party, quote,
                          tuple(m.lower() for m in match))


def parse_ref(text: str) -> tuple[str, str, str] | None:
    """``"RFC 9112 §6.3 (5)"`` -> ``("RFC 9112", "§6.3", "(5)")``; None when not a ref."""
    found = _REF.search(text or "")
    if found is None:
        return None
    return f"RFC {found.group(1)}", f"§{found.group(2)}", (f"({found.group(3)})"
                                                             if found.group(3) else "")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[\"“”|]", "", text or "")).lower()


def tests(entry: Any, requirement: RfcRequirement,
          section_peers: Sequence[RfcRequirement]) -> bool:
    """Whether a catalogue ``entry`` (with ``rfc`` and ``quote``) tests ``requirement``.

    ``section_peers`` are all requirements of the same section: a requirement without
    phrases takes the section's entries only when it is alone there.
    """
    ref = parse_ref(str(getattr(entry, "rfc", "")))
    if ref is None:
        return False
    rfc, section, item = ref
    if (rfc, section) != (requirement.rfc, requirement.section):
        return False
    if item and requirement.item and item != requirement.item:
        return False
    if not requirement.match:
        return len(section_peers) == 1
    quote = _norm(str(getattr(entry, "quote", "")))
    return any(phrase in quote for phrase in requirement.match)


def coverage(requirements: Iterable[RfcRequirement],
             entries: Iterable[Any]) -> dict[str, list[Any]]:
    """Requirement id -> the entries that test it (in catalogue order).

    An entry whose quote holds a requirement's specific phrase (``SPECIFIC`` characters or
    more) tests it whatever section it cites (a quote may carry two sentences); an entry
    that tests nothing in the section it cites is matched by any phrase of its quote.
    """
    reqs = list(requirements)
    items = list(entries)
    peers: dict[tuple[str, str], list[RfcRequirement]] = {}
    for requirement in reqs:
        peers.setdefault((requirement.rfc, requirement.section), []).append(requirement)
    found = {r.id: [e for e in items if tests(e, r, peers[(r.rfc, r.section)])] for r in reqs}
    matched = {id(e) for hits in found.values() for e in hits}
    order = {id(e): i for i, e in enumerate(items)}
    for entry in items:
        quote = _norm(str(getattr(entry, "quote", "")))
        unmatched = id(entry) not in matched
        for requirement in reqs:
            hit = any(p in quote for p in requirement.match
                      if unmatched or len(p) >= SPECIFIC)
            if hit and all(e is not entry for e in found[requirement.id]):
                found[requirement.id].append(entry)
    return {r.id: sorted(found[r.id], key=lambda e: order[id(e)]) for r in reqs}


def unmapped(requirements: Iterable[RfcRequirement], entries: Iterable[Any],
             rfcs: Iterable[str] = ("RFC 9112", "RFC 9110")) -> list[Any]:
    """Entries citing one of ``rfcs`` that test no listed requirement (a table gap)."""
    items = list(entries)
    covered = {id(e) for found in coverage(requirements, items).values() for e in found}
    wanted = set(rfcs)
    return [e for e in items if id(e) not in covered
            and (ref := parse_ref(str(getattr(e, "rfc", "")))) is not None and ref[0] in wanted]


def _all() -> tuple[RfcRequirement, ...]:
    from protocols.rfc9110_requirements import RFC9110
    from protocols.rfc9112_requirements import RFC9112

    return (*RFC9112, *RFC9110)


REQUIREMENTS: tuple[RfcRequirement, ...] = _all()
BY_ID: dict[str, RfcRequirement] = {r.id: r for r in REQUIREMENTS}
