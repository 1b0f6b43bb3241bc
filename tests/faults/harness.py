"""What the fault tests share: `gapreplay` runs as killable subprocesses, and the comparison
of a build (its Delta tables, read with delta-rs, and its shard folder) with a reference."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from deltalake import DeltaTable

from schemas.bronze import GUIDELINES, PMC, PUBMED, PUBMED_DELETIONS, QUARANTINE, REPLAY
from schemas.gold import CORPUS, LINEAGE, SHARDS
from schemas.runs import RUNS
from schemas.silver import DECISIONS, DEDUP_CLUSTERS, DOCUMENTS, SIGNATURES
from schemas.table_spec import TableSpec
from spark_jobs.tables import table_path
from tests.conftest import REPO

CONFIG = REPO / "configs" / "sample.yaml"
ALL_TABLES = [
    PUBMED,
    PUBMED_DELETIONS,
    QUARANTINE,
    PMC,
    REPLAY,
    GUIDELINES,
    DOCUMENTS,
    DECISIONS,
    SIGNATURES,
    DEDUP_CLUSTERS,
    CORPUS,
    SHARDS,
    LINEAGE,
]
# Columns naming the run that wrote a row: they differ between any two builds.
RUN_COLUMNS = {"run_id", "ingest_run_id"}
# Beside the shards, JSON files that hold run ids and config hashes (which include the
# output folder); their other content must match.
RUN_KEYS = {"run_id", "config_sha256"}
RUN_ID = re.compile(r"run ([0-9a-f]{32}) started")


@dataclass(frozen=True)
class Build:
    lakehouse: Path
    out: Path

    @classmethod
    def under(cls, folder: Path) -> Build:
        return cls(folder / "lakehouse", folder / "shards")

    def corpus_args(self, *extra: str) -> list[str]:
        return [
            "corpus",
            "--config",
            str(CONFIG),
            "--lakehouse",
            str(self.lakehouse),
            "--out",
            str(self.out),
            *extra,
        ]


class CliRun:
    """`gapreplay ARGS` in its own process group, its output collected line by line."""

    def __init__(self, args: list[str], log: Path) -> None:
        # A small driver: the benchmarks and other runs may share this machine.
        env = dict(os.environ, GAPREPLAY_DRIVER_MEMORY="2g")
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gapreplay.cli", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # the driver JVM and Python workers share the group
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log.open("w") as copy:
            for line in self.proc.stdout:
                self._lines.append(line)
                copy.write(line)
                copy.flush()

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def wait_for(self, pattern: str, timeout: float = 900) -> re.Match:
        """The first match of `pattern` in the output; fails if the run ends without it."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = compiled.search(self.output)
            if found:
                return found
            if self.proc.poll() is not None:
                self._reader.join(timeout=10)
                found = compiled.search(self.output)
                if found:
                    return found
                raise AssertionError(f"run ended without {pattern!r}:\n{self.output[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} after {timeout} s:\n{self.output[-3000:]}")

    def signal(self, signum: int) -> None:
        os.killpg(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL the driver: its Python process, JVM and workers at once."""
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=60)
        self._reader.join(timeout=10)

    def finish(self, timeout: float = 1200) -> int:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return rc


def run_cli(args: list[str], log: Path) -> str:
    run = CliRun(args, log)
    rc = run.finish()
    assert rc == 0, f"gapreplay {' '.join(args)} failed ({rc}):\n{run.output[-3000:]}"
    return run.output


def runs(lakehouse: Path) -> list[dict]:
    """The `_runs` rows; none before the first stage has ended."""
    path = Path(table_path(str(lakehouse), RUNS))
    if not (path / "_delta_log").is_dir():
        return []
    return DeltaTable(str(path)).to_pyarrow_table().to_pylist()


def stage_seconds(lakehouse: Path) -> dict[str, float]:
    """How long each stage's latest successful run took."""
    latest: dict[str, dict] = {}
    for row in sorted(runs(lakehouse), key=lambda r: r["finished_at"]):
        if row["status"] == "succeeded":
            latest[row["stage"]] = row
    return {s: (r["finished_at"] - r["started_at"]).total_seconds() for s, r in latest.items()}


def table_rows(lakehouse: Path, spec: TableSpec, out: Path | None = None) -> list[str]:
    """A table's rows as sorted JSON, without run ids and with shard prefixes made relative
    to the build's shard folder; empty when the table does not exist."""
    path = Path(table_path(str(lakehouse), spec))
    if not (path / "_delta_log").is_dir():
        return []
    rows = []
    for row in DeltaTable(str(path)).to_pyarrow_table().to_pylist():
        for column in RUN_COLUMNS:
            row.pop(column, None)
        if "prefix" in row and out is not None:
            row["prefix"] = str(Path(row["prefix"]).relative_to(out.resolve()))
        rows.append(json.dumps(row, sort_keys=True, default=str))
    return sorted(rows)


def assert_same_tables(expected: Build, actual: Build, specs: list[TableSpec]) -> None:
    for spec in specs:
        want = table_rows(expected.lakehouse, spec, expected.out)
        got = table_rows(actual.lakehouse, spec, actual.out)
        # The sample quarantines nothing: an empty quarantine must stay empty.
        assert want or spec is QUARANTINE, f"{spec.path} is empty in the reference build"
        assert len(got) == len(set(got)), f"{spec.path} has duplicated rows"
        missing, extra = set(want) - set(got), set(got) - set(want)
        assert not missing and not extra, (
            f"{spec.path}: {len(missing)} row(s) missing, {len(extra)} unexpected; "
            f"e.g. missing {sorted(missing)[:1]}, unexpected {sorted(extra)[:1]}"
        )


def _without_run_keys(value: object, out: Path) -> object:
    if isinstance(value, dict):
        return {k: _without_run_keys(v, out) for k, v in value.items() if k not in RUN_KEYS}
    if isinstance(value, list):
        return [_without_run_keys(v, out) for v in value]
    if isinstance(value, str):
        return value.replace(str(out.resolve()), "<out>")
    return value


def shard_folder(out: Path) -> dict[str, str]:
    """Every file below the shard folder: bytes' SHA-256 for shards and the tokenizer, the
    content without run ids for JSON and blend files, the rows for the export. The dataset
    card is left out: it names the Delta versions the build read, which differ after retries."""
    found: dict[str, str] = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out)
        if rel.parts[0] == "export" or rel.name == "dataset_card.md":
            continue
        if path.suffix == ".json" and rel.parts[0] != "tokenizer":
            content = _without_run_keys(json.loads(path.read_text()), out)
            found[str(rel)] = json.dumps(content, sort_keys=True)
        elif path.suffix == ".txt":
            found[str(rel)] = path.read_text().replace(str(out.resolve()), "<out>")
        else:
            found[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    for split_dir in sorted((out / "export" / "parquet").glob("*")):
        rows = pq.read_table(split_dir).to_pylist()
        found[f"export/parquet/{split_dir.name}"] = _digest(rows)
    for split_dir in sorted((out / "export" / "jsonl").glob("*")):
        lines = [ln for f in sorted(split_dir.glob("*.json")) for ln in f.read_text().splitlines()]
        found[f"export/jsonl/{split_dir.name}"] = _digest([json.loads(ln) for ln in lines])
    return found


def _digest(rows: list[dict]) -> str:
    lines = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest() + f" ({len(lines)} rows)"


def leftovers(out: Path) -> list[Path]:
    """Staging folders and temporary files under, or beside, a shard folder."""
    candidates = [*out.parent.glob(f"{out.name}.*"), *out.rglob("*")]
    return sorted(p for p in candidates if "staging" in p.name or ".tmp" in p.name)
