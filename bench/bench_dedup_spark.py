"""Benchmark the Spark near-duplicate stage (`gapreplay dedup`, local[2]) against datatrove's
four-stage MinHash pipeline (signature, buckets, cluster, filter; LocalPipelineExecutor with
2 tasks on 2 workers) on the same documents, and its growth with the data.

Documents come from bench.near_dup_data.scale_docs (real PubMed text, ~5% planted edited
copies with known Jaccard). For each size: wall time and peak resident memory of the whole
process tree (driver, JVM, Python workers: /proc sampled every 0.2 s), pairs found, and
recall of the planted copies at Jaccard >= 0.8. datatrove runs at the first size only, and
first (the Spark JVM stays up until the process ends and would count in its memory).

    python -m bench.bench_dedup_spark [--spark-only] [N ...]   # default: 10000 100000

Writes bench/results/dedup_spark.json (figures of earlier sizes kept when a run adds one).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import RESULTS, write_result
from bench.near_dup_data import scale_docs
from corpus.minhash import MinHashConfig
from corpus.silver_stages import text_hash

CONFIG = MinHashConfig()
DEFAULT_SIZES = (10_000, 100_000)
CHUNK = 20_000


class PeakMemory:
    """Peak summed RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree_rss(self) -> int:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry))
        total, todo = 0, [os.getpid()]
        while todo:
            pid = todo.pop()
            todo += children.get(pid, [])
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measured(fn: Callable[[], Any]) -> tuple[float, int, Any]:
    with PeakMemory() as memory:
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
    return seconds, memory.peak, result


def write_inputs(n: int, work: Path) -> dict[str, Any]:
    """Documents as silver-shaped Parquet (for Spark) and JSONL (for datatrove); the
    planted pairs at Jaccard >= threshold."""
    planted = set()
    writer = None
    # Two JSONL files: datatrove gives each of its 2 tasks one input file.
    jsonl = [(work / f"docs_{k}.jsonl").open("w") for k in range(2)]
    try:
        rows: list[dict[str, Any]] = []
        for i, doc in enumerate(scale_docs(n, seed=0, config=CONFIG)):
            if doc.dup_of and doc.jaccard is not None and doc.jaccard >= CONFIG.threshold:
                planted.add((doc.dup_of, doc.doc_id))
            rows.append({"doc_id": doc.doc_id, "text": doc.text})
            jsonl[i % 2].write(json.dumps({"id": doc.doc_id, "text": doc.text}) + "\n")
            if len(rows) == CHUNK:
                writer = _write_chunk(rows, work, writer)
                rows = []
        if rows:
            writer = _write_chunk(rows, work, writer)
    finally:
        for stream in jsonl:
            stream.close()
    if writer is not None:
        writer.close()
    return {"planted": planted}


def _write_chunk(rows: list[dict[str, Any]], work: Path, writer: pq.ParquetWriter | None):  # type: ignore[no-untyped-def]
    table = pa.Table.from_pylist(
        [{**r, "text_sha256": text_hash(r["text"]), "n_chars": len(r["text"])} for r in rows]
    )
    if writer is None:
        writer = pq.ParquetWriter(work / "docs.parquet", table.schema)
    writer.write_table(table)
    return writer


def spark_dedup(n: int, work: Path) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from schemas.silver import DECISIONS, DOCUMENTS
    from spark_jobs.dedup import dedup
    from spark_jobs.session import get_spark
    from spark_jobs.tables import merge_into, read_table

    # Verification joins every candidate pair with both shingle sets: at 1M documents the
    # default 4 shuffle partitions ran out of an 8 GB heap; smaller tasks fit.
    spark = get_spark(
        master="local[2]",
        app_name="bench-dedup",
        conf={"spark.sql.shuffle.partitions": str(max(4, n // 10_000))},
    )
    root = str(work / "lakehouse")
    raw = spark.read.parquet(str(work / "docs.parquet"))
    columns = {
        "source": F.lit("replay"),
        "title": F.lit(None).cast("string"),
        "language": F.lit("en"),
        "language_prob": F.lit(1.0),
        "license": F.lit("unknown"),
        "pmid": F.lit(None).cast("bigint"),
        "pmcid": F.lit(None).cast("string"),
        "doi": F.lit(None).cast("string"),
        "origin": F.lit("bench"),
        "source_file": F.lit("bench"),
        "locator": F.col("doc_id"),
        "run_id": F.lit("bench"),
    }
    docs = raw.select(
        *[
            (columns[c] if c in columns else F.col(c)).cast(f.dataType).alias(c)
            for c, f in ((f.name, f) for f in DOCUMENTS.schema.fields)
        ]
    )
    merge_into(spark, root, DOCUMENTS, docs)
    decisions = raw.select(
        "doc_id",
        F.lit("replay").alias("source"),
        F.lit("exact_dedup").alias("stage"),
        F.lit(True).alias("kept"),
        F.lit(None).cast("string").alias("reason"),
        F.lit("").alias("detail"),
        F.lit("bench").alias("run_id"),
    )
    merge_into(spark, root, DECISIONS, decisions)
    seconds, peak, result = measured(lambda: dedup(spark, root, CONFIG))
    removed = {
        r.doc_id
        for r in read_table(spark, root, DECISIONS)
        .filter("stage = 'near_dedup' AND NOT kept")
        .select("doc_id")
        .collect()
    }
    return {
        "seconds": round(seconds, 1),
        "peak_rss_gib": round(peak / 2**30, 2),
        "removed": len(removed),
        "verified_pairs": result.metrics.get("verified_pairs"),
        "candidate_pairs": result.metrics.get("candidate_pairs"),
        "removed_ids": removed,
    }


def _words():  # type: ignore[no-untyped-def]
    """A whitespace word tokenizer for datatrove: its English one needs spaCy, which this
    project does not install; our shingles are words of whitespace-split normalised text."""
    from datatrove.utils.word_tokenizers import WordTokenizer

    class Whitespace(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    return Whitespace("en")


def datatrove_dedup(work: Path) -> dict[str, Any]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    config = MinhashConfig(num_buckets=CONFIG.bands, hashes_per_bucket=CONFIG.rows, n_grams=5)
    out = work / "datatrove"

    def reader() -> JsonlReader:
        return JsonlReader(str(work), glob_pattern="docs_*.jsonl", id_key="id")

    stages = [
        [
            reader(),
            MinhashDedupSignature(
                output_folder=str(out / "sigs"), config=config, language=_words()
            ),
        ],
        [
            MinhashDedupBuckets(
                input_folder=str(out / "sigs"), output_folder=str(out / "buckets"), config=config
            )
        ],
        [
            MinhashDedupCluster(
                input_folder=str(out / "buckets"), output_folder=str(out / "ids"), config=config
            )
        ],
        [
            reader(),
            MinhashDedupFilter(
                input_folder=str(out / "ids"),
                exclusion_writer=JsonlWriter(str(out / "removed"), compression=None),
            ),
            JsonlWriter(str(out / "kept"), compression=None),
        ],
    ]
    tasks = [2, config.num_buckets, 1, 2]

    def run() -> None:
        for number, (pipeline, n_tasks) in enumerate(zip(stages, tasks, strict=True)):
            LocalPipelineExecutor(
                pipeline=pipeline,
                tasks=n_tasks,
                workers=2,
                logging_dir=str(out / f"logs{number}"),
                skip_completed=False,
            ).run()

    seconds, peak, _ = measured(run)
    removed = set()
    for path in (out / "removed").glob("*.jsonl"):
        removed |= {json.loads(line)["id"] for line in path.open()}
    return {
        "seconds": round(seconds, 1),
        "peak_rss_gib": round(peak / 2**30, 2),
        "removed": len(removed),
        "removed_ids": removed,
    }


def recall(removed: set[str], planted: set[tuple[str, str]]) -> float:
    """Share of planted pairs (>= threshold) of which one side was removed."""
    hit = sum(1 for a, b in planted if a in removed or b in removed)
    return round(hit / len(planted), 4) if planted else 1.0


def main(argv: list[str]) -> None:
    spark_only = "--spark-only" in argv
    sizes = [int(a) for a in argv if a != "--spark-only"] or list(DEFAULT_SIZES)
    previous = RESULTS / "dedup_spark.json"
    runs = json.loads(previous.read_text()).get("runs", {}) if previous.exists() else {}
    for i, n in enumerate(sizes):
        work = Path(tempfile.mkdtemp(prefix=f"bench-dedup-{n}-"))
        try:
            made = time.perf_counter()
            planted = write_inputs(n, work)["planted"]
            figures: dict[str, Any] = {"make_docs_s": round(time.perf_counter() - made, 1)}
            figures["planted_pairs_at_threshold"] = len(planted)
            compare = i == 0 and not spark_only
            if compare:  # before Spark: its JVM would count in datatrove's memory otherwise
                theirs = datatrove_dedup(work)
                figures["datatrove"] = {k: v for k, v in theirs.items() if k != "removed_ids"}
                figures["datatrove"]["recall_planted"] = recall(theirs["removed_ids"], planted)
            ours = spark_dedup(n, work)
            figures["spark"] = {k: v for k, v in ours.items() if k != "removed_ids"}
            figures["spark"]["recall_planted"] = recall(ours["removed_ids"], planted)
            if compare:
                figures["spark_time_ratio_to_datatrove"] = round(
                    ours["seconds"] / figures["datatrove"]["seconds"], 2
                )
            runs[str(n)] = figures
            print(n, json.dumps(figures))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    ordered = sorted(runs, key=int)
    growth = {
        f"{a}->{b}": round(runs[b]["spark"]["seconds"] / runs[a]["spark"]["seconds"], 2)
        for a, b in itertools.pairwise(ordered)
    }
    write_result(
        "dedup_spark", {"config": CONFIG.model_dump(), "runs": runs, "time_growth": growth}
    )


if __name__ == "__main__":
    main(sys.argv[1:])
