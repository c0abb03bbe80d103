"""``assay cases``, the RFC requirement table, and the generated docs/CONFORMANCE.md."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from coordinator.cases_cli import SLICES, rows
from coordinator.cli import main
from coordinator.conformance_doc import COMMAND, render
from protocols.rfc_requirements import (
    BY_ID,
    REQUIREMENTS,
    coverage,
    parse_ref,
    req,
    unmapped,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "CONFORMANCE.md"


@dataclass(frozen=True)
class Entry:
    name: str
    rfc: str
    quote: str


# -- the requirement table -----------------------------------------------------------------


def test_requirement_ids_are_unique_and_keywords_are_in_the_quotes() -> None:
    assert len(BY_ID) == len(REQUIREMENTS) > 100
    for r in REQUIREMENTS:
        if r.keyword not in ("ABNF", "DEF"):
            assert r.keyword.split()[0] in r.quote, r.id
        assert r.rfc in ("RFC 9112", "RFC 9110"), r.id
        assert all(phrase == phrase.lower() for phrase in r.match), r.id


@pytest.mark.parametrize(("text", "ref"), [
    ("RFC 9112 §6.3 (5)", ("RFC 9112", "§6.3", "(5)")),
    ("RFC 9110 §15.5.6", ("RFC 9110", "§15.5.6", "")),
    ("RFC 9112 §3", ("RFC 9112", "§3", "")),
    ("see RFC 9112 §7.1.1 and more", ("RFC 9112", "§7.1.1", "")),
    ("WHATWG HTML §9.2", None),
    ("", None),
])
def test_parse_ref(text: str, ref: tuple[str, str, str] | None) -> None:
    assert parse_ref(text) == ref


def test_coverage_by_section_and_phrase_then_by_quote_alone() -> None:
    a = req("9112", "6.3", "MUST", "server", "x", "invalid content-length", item="(5)")
    b = req("9112", "6.3", "MUST", "server", "y", "not the final encoding", item="(4)")
    alone = req("9112", "2.1", "MUST", "recipient", "z")
    by_section = Entry("one", "RFC 9112 §6.3 (5)", "... an invalid Content-Length header ...")
    wrong_item = Entry("two", "RFC 9112 §6.3 (4)", "a bad length")
    elsewhere = Entry("three", "RFC 9110 §8.6", "... is NOT THE FINAL encoding ...")
    in_alone = Entry("four", "RFC 9112 §2.1", "anything")
    stray = Entry("five", "RFC 9112 §9.9", "nothing we know")
    other_rfc = Entry("six", "RFC 6455 §5.1", "nothing we know")
    entries = [by_section, wrong_item, elsewhere, in_alone, stray, other_rfc]
    found = coverage([a, b, alone], entries)
    assert [e.name for e in found[a.id]] == ["one"]
    assert [e.name for e in found[b.id]] == ["three"]  # by quote, outside its section
    assert [e.name for e in found[alone.id]] == ["four"]
    assert [e.name for e in unmapped([a, b, alone], entries)] == ["two", "five"]


def test_host_requirement_is_tested() -> None:
    found = coverage(REQUIREMENTS, rows("adv"))
    assert "host-missing" in [row.name for row in found["9112-3.2-host-400"]]


# -- assay cases ---------------------------------------------------------------------------


def test_rows_cover_every_slice_with_its_columns() -> None:
    everything = rows("all")
    by_slice = {name: [r for r in everything if r.slice == name] for name in SLICES}
    for name in ("adv", "ws", "h2c", "sse"):
        assert by_slice[name], name
    for row in everything:
        assert row.name and row.rfc and row.requirement and row.severity and row.allowed, row
    names = [r.name for r in by_slice["adv"]]
    assert len(names) == len(set(names))


def test_cases_table_json_and_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cases", "--slice", "adv"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:5] == ["slice", "name", "rfc", "req", "severity"]
    assert "cl-conflicting" in table and "in all" in table.splitlines()[-1]
    assert main(["cases", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {item["slice"] for item in data} >= {"adv", "ws", "h2c", "sse"}
    assert set(data[0]) >= {"name", "rfc", "requirement", "severity", "allowed", "quote"}
    by_name = {item["name"]: item for item in data}
    assert by_name["chunk-size-invalid"]["body_route"] and not by_name["host-missing"]["body_route"]
    assert main(["cases", "--markdown"]) == 0
    assert capsys.readouterr().out == render()


def test_unknown_slice_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["cases", "--slice", "nope"])
    assert done.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# -- docs/CONFORMANCE.md ---------------------------------------------------------------------


def test_conformance_doc_is_not_stale() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        f"docs/CONFORMANCE.md is stale: regenerate it with `{COMMAND}`")


def test_conformance_doc_lists_the_untested_requirements() -> None:
    text = render()
    assert "## Not yet tested" in text
    found = coverage(REQUIREMENTS, [*rows("adv"), *rows("resp")])
    for r in REQUIREMENTS:
        if r.testable and not found[r.id]:
            assert f"- `{r.id}`" in text
