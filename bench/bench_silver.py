"""Silver over every fixture: stage times, and documents removed per rule and source with
examples (the figures the silver-layer note reports)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import write_result
from corpus.minhash import MinHashConfig
from corpus.silver_stages import SilverConfig
from spark_jobs.clean import clean
from spark_jobs.config import IngestConfig
from spark_jobs.dedup import dedup
from spark_jobs.pipeline import INGEST_JOBS
from spark_jobs.session import get_spark

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
INPUTS = {
    "pubmed": FIXTURES / "pubmed_xml",
    "pmc": FIXTURES / "pmc_jats",
    "guidelines": FIXTURES / "guidelines" / "pdf",
    "replay": FIXTURES / "redpajama",
}


def main() -> None:
    spark = get_spark()
    timings, figures = {}, {}
    with tempfile.TemporaryDirectory() as root:
        for source, path in INPUTS.items():
            start = time.perf_counter()
            INGEST_JOBS[source](spark, IngestConfig(lakehouse=root, inputs=[str(path)]))
            timings[f"ingest_{source}"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        cleaned = clean(spark, root, SilverConfig())
        timings["clean"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        deduped = dedup(spark, root, MinHashConfig())
        timings["dedup"] = round(time.perf_counter() - start, 1)
        decisions = spark.read.format("delta").load(f"{root}/silver/decisions")
        dropped = decisions.filter("NOT kept").orderBy("stage", "reason", "source", "doc_id")
        examples: dict[str, list] = {}
        for r in dropped.collect():
            key = f"{r.stage}.{r.reason}.{r.source}"
            if len(examples.setdefault(key, [])) < 3:
                examples[key].append({"doc_id": r.doc_id, "detail": r.detail[:160]})
        figures = {
            "seconds": timings,
            "clean": cleaned.metrics,
            "dedup": deduped.metrics,
            "examples": examples,
        }
    spark.stop()
    write_result("silver", figures)
    print(figures["seconds"], {k: v for k, v in cleaned.metrics.items() if k.startswith("dropped")})


if __name__ == "__main__":
    main()
