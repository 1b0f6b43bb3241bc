"""Articles per second of corpus.jats next to pubmed_parser on the PMC JATS fixtures.

Both parsers read the same files in the same run, in alternating whole passes over the
fixtures, each for at least MIN_SECONDS. pubmed_parser is timed for parse_pubmed_xml
(metadata) plus parse_pubmed_paragraph (body paragraphs): the pair that gives what one
corpus.jats row holds.
Writes bench/results/jats.json.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pubmed_parser

from bench.common import write_result
from corpus.jats import parse_pmc_file

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "pmc_jats"
MIN_SECONDS = 3.0


def _ours(path: str) -> int:
    return sum(isinstance(item, dict) for item in parse_pmc_file(path))


def _reference(path: str) -> int:
    pubmed_parser.parse_pubmed_xml(path)
    pubmed_parser.parse_pubmed_paragraph(path, all_paragraph=True)
    return 1


def _interleaved(parsers: dict[str, Callable[[str], int]], paths: list[str]) -> dict[str, Any]:
    """Whole passes over `paths`, one parser after the other, until each has run for
    MIN_SECONDS: a load change on a shared machine then hits both alike."""
    for parse in parsers.values():  # warm-up: imports, caches, first page faults
        for path in paths:
            parse(path)
    totals = {name: {"articles": 0, "passes": 0, "seconds": 0.0} for name in parsers}
    while min(t["seconds"] for t in totals.values()) < MIN_SECONDS:
        for name, parse in parsers.items():
            start = time.perf_counter()
            totals[name]["articles"] += sum(parse(path) for path in paths)
            totals[name]["seconds"] += time.perf_counter() - start
            totals[name]["passes"] += 1
    for t in totals.values():
        t["articles_per_s"] = round(t["articles"] / t["seconds"], 1)
        t["seconds"] = round(t["seconds"], 3)
    return totals


def main() -> None:
    paths = sorted(str(p) for p in FIXTURES.rglob("*") if p.suffix in (".xml", ".nxml"))
    if not paths:
        raise SystemExit(f"no fixtures under {FIXTURES}")
    rates = _interleaved({"gapreplay_jats": _ours, "pubmed_parser": _reference}, paths)
    ours, reference = rates["gapreplay_jats"], rates["pubmed_parser"]
    result = {
        "fixtures": len(paths),
        "fixture_bytes": sum(os.path.getsize(p) for p in paths),
        "gapreplay_jats": ours,
        "pubmed_parser": {"version": pubmed_parser.__version__, **reference},
        "ratio_gapreplay_over_pubmed_parser": round(
            ours["articles_per_s"] / reference["articles_per_s"], 2
        ),
    }
    write_result("jats", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
