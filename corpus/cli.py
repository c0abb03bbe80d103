"""``assay corpus add|list``: curate the seed corpus (``corpus.store`` owns the format).

``add --seed N [--note TEXT]`` records a regression seed (it then runs first in every tier);
``add FILE [--note TEXT]`` copies a repro file beside the corpus and pins its sha256;
``list [--tier T]`` prints a tier's seeds one per line (regression seeds annotated), or,
without ``--tier``, a summary of tiers, regression seeds and reproducers. A corrupt or
truncated corpus file is exit 2 with one line naming what is wrong.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from corpus.store import Corpus

EXIT_OK, EXIT_USAGE = 0, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="corpus_command", required=True,
                                parser_class=type(parser))
    add = sub.add_parser("add", help="record a regression seed or a reproducer file")
    add.add_argument("file", nargs="?", type=Path, help="a repro file (assay-repro/1)")
    add.add_argument("--seed", help="a seed (u64, decimal or 0x hex)")
    add.add_argument("--note", default="", help="why it is in the corpus")
    add.add_argument("--corpus", type=Path, help="corpus file (default corpus/seeds.json, "
                     "or $ASSAY_CORPUS)")
    listing = sub.add_parser("list", help="list a tier's seeds, or summarise the corpus")
    listing.add_argument("--tier", help="pr, nightly or weekend")
    listing.add_argument("--corpus", type=Path, help="corpus file")


def main(args: argparse.Namespace) -> int:
    from corpus.generator import GENERATOR_VERSION, SeedError, parse_seed
    from corpus.store import CorpusError, load

    try:
        store = load(args.corpus)
        if args.corpus_command == "list":
            return _list(store, args.tier)
        if (args.seed is None) == (args.file is None):
            raise CorpusError("corpus add takes exactly one of --seed N or FILE")
        if args.seed is not None:
            seed = parse_seed(args.seed)
            added = store.add_seed(seed, args.note, GENERATOR_VERSION)
            if added:
                store.save()
            print(f"{'added' if added else 'already recorded'}: regression seed {seed} "
                  f"(generator v{GENERATOR_VERSION}) in {store.path}")
            return EXIT_OK
        importlib.import_module("corpus.seed_checks")  # a seed program is a valid repro too
        entry = store.add_reproducer(args.file, args.note)
        store.save()
        print(f"reproducer {entry['file']} (sha256 {entry['sha256'][:16]}...) in {store.path}")
        return EXIT_OK
    except (CorpusError, SeedError) as exc:
        sys.stderr.write(f"assay: error: {exc}\n")
        return EXIT_USAGE


def _list(corpus: Corpus, tier: str | None) -> int:
    notes = {int(r["seed"]): r.get("note", "") for r in corpus.regression}
    if tier is not None:
        seeds = corpus.tier_seeds(tier)
        print(f"# tier {tier}: {len(seeds)} seeds ({len(notes)} regression first)")
        for seed in seeds:
            print(f"{seed}  # regression: {notes[seed]}" if seed in notes else seed)
        return EXIT_OK
    print(f"corpus {corpus.path}")
    for name, count in sorted(corpus.tiers.items(), key=lambda item: item[1]):
        print(f"tier {name}: {count} derived + {len(notes)} regression seed(s)")
    for record in corpus.regression:
        print(f"regression {record['seed']} (generator v{record.get('generator', '?')}, "
              f"{record.get('added', '?')}): {record.get('note', '')}")
    for entry in corpus.reproducers:
        print(f"reproducer {entry['file']} sha256 {entry['sha256'][:16]}... "
              f"{entry.get('note', '')}")
    return EXIT_OK
