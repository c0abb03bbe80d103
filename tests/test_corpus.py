"""The corpus file: tiers, regression seeds, reproducers, checksums, and the CLI over it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from corpus import store
from corpus.store import TIERS, CorpusError
from tests.assay_cli import assay


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "seeds.json"
    shutil.copy(store.DEFAULT_PATH, path)
    return path


def test_shipped_corpus_is_valid_and_tiered() -> None:
    corpus = store.load(store.DEFAULT_PATH)
    pr, nightly, weekend = (corpus.tier_seeds(t) for t in ("pr", "nightly", "weekend"))
    regression = len(corpus.regression)
    assert (len(pr), len(nightly), len(weekend)) == (
        TIERS["pr"] + regression, TIERS["nightly"] + regression, TIERS["weekend"] + regression)
    assert pr == nightly[: len(pr)] and nightly == weekend[: len(nightly)]
    assert len(set(weekend)) == len(weekend)
    assert all(0 <= s < 2**64 for s in weekend)


def test_regression_seeds_run_first_and_once(corpus_file: Path) -> None:
    corpus = store.load(corpus_file)
    existing = corpus.tier_seeds("pr")[5]
    assert corpus.add_seed(12345, "found by a test", 1)
    assert not corpus.add_seed(12345, "again", 1)
    assert corpus.add_seed(existing, "already in the tier", 1)
    corpus.save()
    again = store.load(corpus_file)
    seeds = again.tier_seeds("pr")
    assert seeds[: len(again.regression)] == [r["seed"] for r in again.regression]
    assert seeds.count(existing) == 1 and 12345 in seeds


@pytest.mark.parametrize("damage, message", [
    (lambda text: text[: len(text) // 2], "not valid JSON (truncated)"),
    (lambda text: text.replace('"pr": 200', '"pr": 201'), "checksum mismatch"),
    (lambda text: text.replace('"format": "assay-corpus/1"', '"format": "x/9"'), "format"),
    (lambda text: "", "not valid JSON"),
    (lambda text: "[1, 2]", "not a JSON object"),
])
def test_damaged_corpus_is_one_clear_error(corpus_file: Path, damage, message: str) -> None:
    corpus_file.write_text(damage(corpus_file.read_text()))
    with pytest.raises(CorpusError) as info:
        store.load(corpus_file)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(corpus_file) in str(info.value)


def test_changed_seed_list_is_caught(corpus_file: Path) -> None:
    document = json.loads(corpus_file.read_text())
    document["seeds_sha256"] = "0" * 64
    document["sha256"] = store.hashlib.sha256(store._canonical(document)).hexdigest()
    corpus_file.write_text(json.dumps(document))
    with pytest.raises(CorpusError, match="seeds_sha256"):
        store.load(corpus_file)


def test_cli_add_list_and_corrupt_exit_2(corpus_file: Path, tmp_path: Path) -> None:
    env = {"ASSAY_CORPUS": str(corpus_file)}
    added = assay("corpus", "add", "--seed", "0x2a", "--note", "from a test", env=env)
    assert added.returncode == 0, added.stderr
    assert "regression seed 42" in added.stdout
    regression = len(store.load(corpus_file).regression)
    listed = assay("corpus", "list", "--tier", "pr", env=env)
    lines = listed.stdout.splitlines()
    assert listed.returncode == 0 and lines[regression].startswith("42  # regression: from")
    assert len(lines) == 1 + TIERS["pr"] + regression
    summary = assay("corpus", "list", env=env)
    assert "tier weekend: 50000 derived" in summary.stdout
    corpus_file.write_text(corpus_file.read_text()[:-40])
    broken = assay("corpus", "list", env=env)
    assert broken.returncode == 2 and broken.stdout == ""
    assert len(broken.stderr.strip().splitlines()) == 1 and "corpus" in broken.stderr
    usage = assay("corpus", "add", "--corpus", str(tmp_path / "nope.json"), "--seed", "1")
    assert usage.returncode == 2 and "no such file" in usage.stderr


def test_reproducer_is_pinned_by_sha256(corpus_file: Path, tmp_path: Path) -> None:
    saved = tmp_path / "seed7.json"
    dry = assay("replay", "--seed", "7", "--dry-run")
    assert dry.returncode == 0
    from corpus.generator import expand
    from replay.repro import Repro, save_repro

    save_repro(Repro(program=expand(7).program, seed=7), saved)
    added = assay("corpus", "add", str(saved), "--note", "seed 7 program",
                  env={"ASSAY_CORPUS": str(corpus_file)})
    assert added.returncode == 0, added.stderr
    corpus = store.load(corpus_file)
    entry = corpus.reproducers[0]
    assert (corpus_file.parent / entry["file"]).read_bytes() == saved.read_bytes()
    (corpus_file.parent / entry["file"]).write_text("{}")
    with pytest.raises(CorpusError, match="does not match its sha256"):
        store.load(corpus_file)
