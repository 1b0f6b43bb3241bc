"""Pages per second of corpus.pdf_text next to plain PyMuPDF `page.get_text()` on the fixture
guideline PDFs.

Three extractors read the same files in the same run, in alternating whole passes over the
fixtures, each for at least MIN_SECONDS: plain `get_text()` on every page (the floor: no
layout work at all), `extract_pdf` in this process, and `extract_pdf_isolated` (the same in
the worker process, as ingestion runs it: pickling and pipes included).
Writes bench/results/guidelines.json.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymupdf

from bench.common import write_result
from corpus.pdf_text import extract_pdf
from corpus.pdf_worker import default_worker, extract_pdf_isolated

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "guidelines" / "pdf"
MIN_SECONDS = 3.0


def _plain(path: str) -> int:
    with pymupdf.open(path) as doc:
        for page in doc:
            page.get_text()
        return doc.page_count


def _ours(path: str) -> int:
    with open(path, "rb") as f:
        return extract_pdf(f.read()).n_pages


def _isolated(path: str) -> int:
    result = extract_pdf_isolated(path, max_pages=1000, timeout_s=600)
    if not hasattr(result, "n_pages"):
        raise RuntimeError(f"{path}: {result}")
    return result.n_pages


def _interleaved(extractors: dict[str, Callable[[str], int]], paths: list[str]) -> dict[str, Any]:
    """Whole passes over `paths`, one extractor after the other, until each has run for
    MIN_SECONDS: a load change on a shared machine then hits all alike."""
    smallest = min(paths, key=os.path.getsize)
    for extract in extractors.values():  # warm-up: imports, the worker's start, caches
        extract(smallest)
    totals = {name: {"pages": 0, "passes": 0, "seconds": 0.0, "by_file": {}} for name in extractors}
    while min(t["seconds"] for t in totals.values()) < MIN_SECONDS:
        for name, extract in extractors.items():
            t = totals[name]
            for path in paths:
                start = time.perf_counter()
                pages = extract(path)
                seconds = time.perf_counter() - start
                t["pages"] += pages
                t["seconds"] += seconds
                per_file = t["by_file"].setdefault(Path(path).name, [0, 0.0])
                per_file[0] += pages
                per_file[1] += seconds
            t["passes"] += 1
    for t in totals.values():
        t["pages_per_s"] = round(t["pages"] / t["seconds"], 1)
        t["seconds"] = round(t["seconds"], 3)
        t["by_file"] = {name: round(p / s, 1) for name, (p, s) in t["by_file"].items()}
    return totals


def main() -> None:
    paths = sorted(str(p) for p in FIXTURES.glob("*.pdf"))
    if not paths:
        raise SystemExit(f"no fixtures under {FIXTURES}")
    rates = _interleaved(
        {"pymupdf_get_text": _plain, "gapreplay_pdf_text": _ours, "gapreplay_isolated": _isolated},
        paths,
    )
    default_worker("pdf").close()
    plain = rates["pymupdf_get_text"]["pages_per_s"]
    result = {
        "fixtures": len(paths),
        "pages_per_pass": sum(pymupdf.open(p).page_count for p in paths),
        "fixture_bytes": sum(os.path.getsize(p) for p in paths),
        "pymupdf": pymupdf.VersionBind,
        **rates,
        "ratio_pdf_text_over_get_text": round(
            rates["gapreplay_pdf_text"]["pages_per_s"] / plain, 3
        ),
        "ratio_isolated_over_get_text": round(
            rates["gapreplay_isolated"]["pages_per_s"] / plain, 3
        ),
    }
    write_result("guidelines", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
