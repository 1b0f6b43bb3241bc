"""Scale benchmark: the whole pipeline (`gapreplay corpus`, in a subprocess, local Spark on
this machine's cores, its own lakehouse under bench/work/scale) on generated inputs
(bench.large_inputs: PubMed XML, PMC JATS packages, RedPajama JSONL, 2% exact and 3% near
duplicates) at 10k, 100k and 300k documents; then parse, dedup and tokenize alone at 100k
and 1M documents.

Per stage: seconds (`_runs` started_at/finished_at, read with delta-rs) and peak RSS of the
whole process tree (driver Python, JVM, Python workers; /proc sampled every 0.5 s, peak
within the stage's window; the JVM keeps the heap an earlier stage grew, so a stage's peak
is at least the JVM's size when it starts), the documents it read and kept, and growth
ratios: time at 100k / 10k, and 300k / 100k raised to the per-10x power (log 10 / log 3).
Layer sizes (bronze, silver, gold folders, shard bytes) feed bench/cost_model.py.

Alone: parse = corpus.pubmed_xml over generated PubMed files, one process; dedup =
bench.bench_dedup_spark (real PubMed text, ~5% planted copies) with the session's default
shuffle partitions, so that the dedup stage sizes its own; tokenize = the shards task
(spark_jobs.shards' partition function) with MediTron's Llama-2 tokenizer over generated
PubMed titles + abstracts.

    python -m bench.bench_scale --full | [--sizes 10000 100000 300000] [--alone 100000 1000000]
        [--tasks parse tokenize dedup] [--pipeline-timeout SECONDS]

`--sizes` with no value skips the pipeline, `--tasks` with none the alone runs; parse and
tokenize (no Spark) may run in a second process beside the Spark one, both merge their
figures into the same file.

About 1.5 hours on 2 quiet cores (pipeline 10k 3 min, 100k 10 min, 300k about 30 min; the
alone runs at 1M about 45 min, plus generating the inputs): run bare (as `make bench` runs
every bench_*.py) it only says so; `make bench-scale` runs `--full` (the defaults).
Writes bench/results/scale.json after every measurement (a run that stops keeps what ended).
"""

from __future__ import annotations

import argparse
import fcntl
import itertools
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.bench_dedup_spark import PeakMemory, measured, spark_dedup, write_inputs
from bench.common import RESULTS, write_result
from bench.large_inputs import FIXTURES, documents, generate

HERE = Path(__file__).resolve().parent
WORK = HERE / "work" / "scale"
SIZES = (10_000, 100_000, 300_000)
ALONE = (100_000, 1_000_000)
SEED = 0
TOKENIZE_BATCH = 10_000
TOKENIZE_DOCS_PER_FILE = 250_000  # several shard files at 1M, as max_tokens_per_file cuts


class RssTrace(PeakMemory):
    """PeakMemory that keeps every (unix time, tree RSS) sample, to find each stage's peak."""

    def __init__(self, interval: float = 0.5) -> None:
        super().__init__(interval)
        self.samples: list[tuple[float, int]] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._tree_rss()
            self.samples.append((time.time(), rss))
            self.peak = max(self.peak, rss)
            self._stop.wait(self.interval)

    def peak_between(self, start: float, end: float) -> int:
        return max((rss for t, rss in self.samples if start <= t <= end), default=0)


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _gib(n: int) -> float:
    return round(n / 2**30, 3)


def pipeline(n: int, timeout: float | None = None) -> dict[str, Any]:
    """Generate n documents, run `gapreplay corpus` on them, read the stages' runs; past
    `timeout` seconds the run is stopped and the stages that finished are reported."""
    from gapreplay.read import Lakehouse

    work = WORK / f"pipeline_{n}"
    shutil.rmtree(work, ignore_errors=True)
    start = time.perf_counter()
    manifest = generate(n, work / "inputs", seed=SEED)
    generate_s = time.perf_counter() - start
    lake, shards = work / "lakehouse", work / "shards"
    command = [str(Path(sys.executable).parent / "gapreplay"), "corpus"]
    command += ["--config", str(work / "inputs" / "corpus.yaml")]
    command += ["--lakehouse", str(lake), "--out", str(shards)]
    with (work / "corpus.log").open("w") as log, RssTrace() as trace:
        start = time.perf_counter()
        # Its own process group: a run stopped at the timeout takes its JVM with it.
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parent, start_new_session=True
        )
        try:
            code: int | str = process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = f"stopped after {timeout:.0f} s"
        wall = time.perf_counter() - start
    house = Lakehouse(lake)
    columns = ["stage", "status", "started_at", "finished_at", "rows_in", "rows_out", "metrics"]
    runs = house.read("_runs", columns).to_pylist() if house.exists("_runs") else []
    stages: dict[str, Any] = {}
    for run in sorted(runs, key=lambda r: r["started_at"]):
        if run["finished_at"] is None:
            continue
        begin, end = run["started_at"].timestamp(), run["finished_at"].timestamp()
        stages[run["stage"]] = {
            "status": run["status"],
            "seconds": round(end - begin, 1),
            "peak_rss_gib": _gib(trace.peak_between(begin, end)),
            "rows_in": run["rows_in"],
            "rows_out": run["rows_out"],
        }
    metrics = {r["stage"]: dict(r["metrics"] or {}) for r in runs}
    tokens = sum(int(v) for k, v in metrics.get("shards", {}).items() if k.startswith("tokens."))
    sizes = {layer: folder_bytes(lake / layer) for layer in ("bronze", "silver", "gold")}
    shard_bytes = sum(p.stat().st_size for p in shards.rglob("*.bin")) if shards.exists() else 0
    figures = {
        "exit_code": code,
        "generate_s": round(generate_s, 1),
        "input_bytes": sum(s["bytes"] for s in manifest["sources"].values()),
        "inputs": manifest["sources"],
        "wall_s": round(wall, 1),
        "peak_rss_gib": _gib(trace.peak),
        "stages": stages,
        "dedup_metrics": metrics.get("dedup", {}),
        "clean_metrics": metrics.get("clean", {}),
        "mix_metrics": metrics.get("mix", {}),
        "tokens": tokens,
        "layer_bytes": sizes,
        "shard_bin_bytes": shard_bytes,
    }
    shutil.rmtree(work, ignore_errors=True)  # a 300k run leaves gigabytes
    return figures


def parse_alone(n: int) -> dict[str, Any]:
    """corpus.pubmed_xml over n generated PubMed records (30,000 a file), one process."""
    from corpus.pubmed_xml import parse_pubmed_file

    work = WORK / f"parse_{n}"
    shutil.rmtree(work, ignore_errors=True)
    start = time.perf_counter()
    manifest = generate(n, work, seed=SEED, mix={"pubmed": 1.0})
    generate_s = time.perf_counter() - start
    files = sorted((work / "pubmed").iterdir())

    def parse() -> int:
        return sum(1 for f in files for row in parse_pubmed_file(str(f)) if isinstance(row, dict))

    seconds, peak, records = measured(parse)
    shutil.rmtree(work, ignore_errors=True)
    return {
        "generate_s": round(generate_s, 1),
        "files": len(files),
        "input_bytes": manifest["sources"]["pubmed"]["bytes"],
        "records": records,
        "seconds": round(seconds, 1),
        "peak_rss_gib": _gib(peak),
        "docs_per_s_per_core": round(records / seconds, 1),
    }


def dedup_alone(n: int) -> dict[str, Any]:
    """bench_dedup_spark's Spark run at n documents, with the product's own partitioning."""
    work = WORK / f"dedup_{n}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    start = time.perf_counter()
    write_inputs(n, work)
    generate_s = time.perf_counter() - start
    # spark_dedup sizes the shuffle partitions from its first argument (max(4, n // 10,000));
    # 1 leaves the session default (4 on 2 cores): what `gapreplay dedup` gets.
    figures = spark_dedup(1, work)
    shutil.rmtree(work, ignore_errors=True)
    figures.pop("removed_ids")
    figures["generate_s"] = round(generate_s, 1)
    figures["docs"] = n
    figures["docs_per_s_per_core"] = round(n / figures["seconds"] / (os.cpu_count() or 1), 1)
    return figures


def tokenize_alone(n: int) -> dict[str, Any]:
    """The shards task (tokenize, EOD, .bin/.idx with SHA-256) over n PubMed documents."""
    from corpus.tokenizer import TokenizerConfig, build_tokenizer
    from spark_jobs.shards import _write_partition

    class Shipped:  # what a Spark broadcast gives the partition function
        value = build_tokenizer(
            TokenizerConfig(kind="sentencepiece", path=str(_llama2()), markers=True)
        ).to_bytes()

    work = WORK / f"tokenize_{n}"
    shutil.rmtree(work, ignore_errors=True)

    def batches() -> Iterator[pa.RecordBatch]:
        rows: list[tuple[int, str]] = []
        for i, (_, text) in enumerate(documents("pubmed", n, SEED, 0.0, 0.0)):
            rows.append((i, text))
            if len(rows) == TOKENIZE_BATCH or i == n - 1:
                yield pa.record_batch(
                    {
                        "doc_id": [f"pubmed:{k}" for k, _ in rows],
                        "split": ["train"] * len(rows),
                        "source": ["pubmed"] * len(rows),
                        "file_index": [k // TOKENIZE_DOCS_PER_FILE for k, _ in rows],
                        "n_tokens": [0] * len(rows),
                        "text": [t for _, t in rows],
                    }
                )
                rows = []

    # The texts are made before the clock starts: generating them is not tokenizing.
    start = time.perf_counter()
    ready = list(batches())
    generate_s = time.perf_counter() - start
    chars = sum(sum(len(t) for t in b.column("text").to_pylist()) for b in ready)

    def run() -> int:
        total = 0
        for out in _write_partition(str(work), Shipped())(iter(ready)):
            for kind, tokens in zip(
                out.column("kind").to_pylist(), out.column("n_tokens").to_pylist(), strict=True
            ):
                total += tokens if kind == "file" else 0
        return total

    seconds, peak, tokens = measured(run)
    shard_bytes = sum(p.stat().st_size for p in work.rglob("*.bin"))
    shutil.rmtree(work, ignore_errors=True)
    return {
        "generate_s": round(generate_s, 1),
        "docs": n,
        "characters": chars,
        "tokens": tokens,
        "seconds": round(seconds, 1),
        "peak_rss_gib": _gib(peak),
        "threads": int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count() or 1)),
        "docs_per_s_per_core": round(n / seconds / (os.cpu_count() or 1), 1),
        "tokens_per_s_per_core": round(tokens / seconds / (os.cpu_count() or 1)),
        "shard_bin_bytes": shard_bytes,
    }


def _llama2() -> Path:
    return FIXTURES / "tokenizers" / "llama2" / "tokenizer.model"


def per_10x(small: float, large: float, factor: float) -> float:
    """Growth of `large / small` over a data factor, stated per 10x of data."""
    return round((large / small) ** (math.log(10) / math.log(factor)), 2)


def ratios(figures: dict[str, Any]) -> dict[str, Any]:
    """Time growth per stage between the pipeline sizes, and of the alone runs."""
    out: dict[str, Any] = {"pipeline": {}, "alone": {}}
    sizes = sorted(figures["pipeline"], key=int)
    for a, b in itertools.pairwise(sizes):
        factor = int(b) / int(a)
        stages_a, stages_b = figures["pipeline"][a]["stages"], figures["pipeline"][b]["stages"]
        out["pipeline"][f"{a}->{b}"] = {
            stage: {
                "time_ratio": round(stages_b[stage]["seconds"] / stages_a[stage]["seconds"], 2),
                "per_10x": per_10x(stages_a[stage]["seconds"], stages_b[stage]["seconds"], factor),
            }
            for stage in stages_b
            if stage in stages_a and stages_a[stage]["seconds"] > 0
        }
    for task, runs in figures["alone"].items():
        done = sorted(runs, key=int)
        for a, b in itertools.pairwise(done):
            out["alone"][f"{task} {a}->{b}"] = {
                "time_ratio": round(runs[b]["seconds"] / runs[a]["seconds"], 2),
                "per_10x": per_10x(runs[a]["seconds"], runs[b]["seconds"], int(b) / int(a)),
            }
    return out


def _save(path: tuple[str, ...], value: dict[str, Any]) -> None:
    """Put one measurement into scale.json under `path`, keeping the others: two runs (the
    Spark one and the single-process one) may write at once, so under a file lock."""
    WORK.mkdir(parents=True, exist_ok=True)
    with (WORK / "scale.json.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        previous = RESULTS / "scale.json"
        figures = json.loads(previous.read_text()) if previous.exists() else {}
        figures.setdefault("pipeline", {})
        figures.setdefault("alone", {task: {} for task in TASKS})
        node = figures
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
        figures["host"] = {
            "cpus": os.cpu_count(),
            "memory_gib": _gib(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")),
            "platform": platform.platform(),
            "spark_master": "local[*]",
            "note": "a shared machine: compare ratios of one run, and see notes for the load",
        }
        figures["ratios"] = ratios(figures)
        write_result(
            "scale", {k: v for k, v in figures.items() if k not in ("machine", "measured_at")}
        )


def main(argv: list[str]) -> None:
    if not argv:  # `make bench` runs every bench_*.py bare: this one is `make bench-scale`
        print("bench_scale takes hours: `make bench-scale` (or --full) runs it")
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="every size and task")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--alone", type=int, nargs="*", default=list(ALONE))
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=TASKS)
    parser.add_argument("--pipeline-timeout", type=float, default=None, help="seconds per size")
    args = parser.parse_args(argv)
    for n in args.sizes:
        print(f"== pipeline {n}", flush=True)
        figures = pipeline(n, args.pipeline_timeout)
        print(json.dumps(figures["stages"]), flush=True)
        _save(("pipeline", str(n)), figures)
    # Spark last: its JVM stays up and would count in the others' memory.
    for task in sorted(args.tasks, key=lambda t: t == "dedup"):
        for n in args.alone:
            print(f"== {task} {n}", flush=True)
            figures = ALONE_TASKS[task](n)
            print(json.dumps(figures), flush=True)
            _save(("alone", task, str(n)), figures)


ALONE_TASKS: dict[str, Callable[[int], dict[str, Any]]] = {
    "parse": parse_alone,
    "tokenize": tokenize_alone,
    "dedup": dedup_alone,
}
TASKS = tuple(ALONE_TASKS)


if __name__ == "__main__":
    main(sys.argv[1:])
