"""download.replay against a loopback copy of the Hugging Face `resolve/main` layout holding
the real RedPajama/Dolma fixture files: the token budget applied while streaming (kept tokens
within one document of each subset's budget, exactly `corpus.sampler.select`'s choice),
byte-identical outputs across runs, resume after a drop inside a run (gzip too) and across
runs (Range from the last complete line), a second run that fetches nothing, a dry run."""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import pytest
from rich.console import Console

import download
from corpus.jsonl import jsonl_lines
from corpus.replay_jsonl import parse_line, parse_replay_file, subset_from_filename
from corpus.sampler import select
from download.files import read_manifest
from download.replay import approx_tokens
from tests.conftest import FIXTURES
from tests.test_download_http import FAST, Mirror, fetch

FILES = [
    "rp_arxiv_sample.jsonl",
    "redpajama-c4-refined.jsonl",
    "redpajama-cc-2023-06-refined.jsonl",
    "redpajama-pile-stackexchange-refined.jsonl",
    "the-pile-nih-refined.jsonl",  # the Pile: no share, so nothing kept
    "dolma_documents_000.json.gz",  # gzip, streamed through zlib
]
SHARES = {"arxiv": 0.4, "c4": 0.2, "common_crawl": 0.3, "stackexchange": 0.1}
BUDGET = 20_000
OPTIONS = {**FAST, "files": FILES, "budget_tokens": BUDGET, "subset_shares": SHARES, "seed": 7}
MAIN = "/datasets/togethercomputer/RedPajama-Data-1T-Sample/resolve/main/"
ARXIV = MAIN + "rp_arxiv_sample.jsonl"
DOLMA = MAIN + "dolma_documents_000.json.gz"


@pytest.fixture
def mirror(tmp_path: Path):
    root = tmp_path / "www"
    (root / MAIN.strip("/")).mkdir(parents=True)
    for name in FILES:
        (root / MAIN.strip("/") / name).write_bytes((FIXTURES / "redpajama" / name).read_bytes())
    with Mirror(root) as mirror:
        yield mirror


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.kept.jsonl.gz"))}


def _expected() -> tuple[set[str], dict[str, int], dict[str, int]]:
    """`select` over every document of the inputs, parsed as ingest parses them; the
    approximate tokens per doc_id; the tokens available per subset."""
    docs: dict[str, tuple[str, str, int]] = {}
    for name in FILES:
        path = str(FIXTURES / "redpajama" / name)
        for lineno, raw in jsonl_lines(path):
            row = parse_line(raw, lineno, subset_from_filename(path))
            n_tokens = approx_tokens(row["text"], 4.0)
            docs.setdefault(row["doc_id"], (row["doc_id"], row["subset"], n_tokens))
    available: dict[str, int] = defaultdict(int)
    for _, subset, n_tokens in docs.values():
        available[subset] += n_tokens
    tokens = {doc_id: n for doc_id, _, n in docs.values()}
    return select(docs.values(), BUDGET, SHARES, seed=7), tokens, available


def test_budget_while_streaming_is_select_and_deterministic(mirror: Mirror, tmp_path: Path) -> None:
    report = fetch("replay", tmp_path / "a", mirror, options=OPTIONS)
    assert (report.fetched, report.failed) == (6, 0)
    outputs = _outputs(tmp_path / "a")
    assert "the-pile-nih-refined.kept.jsonl.gz" not in outputs
    kept: dict[str, int] = {}
    by_subset: dict[str, list[int]] = defaultdict(list)
    expected, tokens, available = _expected()
    for name in outputs:
        # Read back the way ingest reads them: same doc_ids, same subsets.
        for row in parse_replay_file(str(tmp_path / "a" / name)):
            kept[row["doc_id"]] = tokens[row["doc_id"]]
            by_subset[row["subset"]].append(tokens[row["doc_id"]])
    assert set(kept) == expected and len(kept) == sum(len(v) for v in by_subset.values())
    budgets = {"arxiv": 8000, "c4": 4000, "common_crawl": 6000, "stackexchange": 2000}
    assert set(by_subset) == set(budgets)
    for subset, counts in by_subset.items():
        # Within one document of the budget, or the whole subset when it holds less.
        assert sum(counts) < budgets[subset] + max(counts), subset
        assert sum(counts) >= budgets[subset] or sum(counts) == available[subset], subset
    assert available["c4"] < budgets["c4"] and available["arxiv"] > budgets["arxiv"]
    # The records are the original lines; the manifest has the outputs and the inputs.
    records = read_manifest(tmp_path / "a")
    assert sorted(r["path"] for r in records if r["status"] == "ok") == sorted(outputs)
    assert sum(r["status"] == "streamed" for r in records) == 6
    # A second folder, fresh state: the same bytes.
    assert _outputs(tmp_path / "b") == {}
    fetch("replay", tmp_path / "b", mirror, options=OPTIONS)
    assert _outputs(tmp_path / "b") == outputs


def test_resume_inside_a_run_and_across_runs(mirror: Mirror, tmp_path: Path) -> None:
    fetch("replay", tmp_path / "reference", mirror, options=OPTIONS)
    reference = _outputs(tmp_path / "reference")
    mirror.clear()
    # The gzip input drops once and goes on in the same run (Range into the compressed
    # stream, same inflater). Arxiv drops three times: tries that make progress do not use
    # up the retries, so it fails at the third, which brings nothing.
    mirror.drop[DOLMA] = [10_000]
    mirror.drop[ARXIV] = [60_000, 10_000, 0]
    to = tmp_path / "replay"
    first = fetch("replay", to, mirror, options={**OPTIONS, "retries": 1})
    assert (first.fetched, first.failed) == (5, 1)
    assert _outputs(to) == {}  # nothing is written before every input is done

    def ranges(path: str) -> list[str | None]:
        return [r.headers.get("range") for r in mirror.seen("GET") if r.path == path]

    assert ranges(DOLMA) == [None, "bytes=10000-"]
    assert ranges(ARXIV) == [None, "bytes=60000-", "bytes=70000-"]
    mirror.clear()
    second = fetch("replay", to, mirror, options=OPTIONS)
    assert (second.fetched, second.skipped_unchanged) == (1, 5)
    arxiv = (FIXTURES / "redpajama/rp_arxiv_sample.jsonl").read_bytes()
    # The checkpoint is the end of the last complete line the failed run read.
    resume_at = arxiv.rindex(b"\n", 0, 70_000) + 1
    assert [r.path for r in mirror.seen("GET")] == [ARXIV]
    assert ranges(ARXIV) == [f"bytes={resume_at}-"]
    assert _outputs(to) == reference


def test_second_run_fetches_nothing_and_inputs_can_be_added(mirror: Mirror, tmp_path: Path) -> None:
    to = tmp_path / "replay"
    fetch("replay", to, mirror, options={**OPTIONS}, max_files=3)
    assert len(_outputs(to)) == 3
    fetch("replay", to, mirror, options=OPTIONS)
    mirror.clear()
    before = {p.name: p.stat().st_mtime_ns for p in to.glob("*.kept.jsonl.gz")}
    again = fetch("replay", to, mirror, options=OPTIONS)
    assert (again.fetched, again.skipped_unchanged, again.bytes) == (0, 6, 0)
    assert mirror.requests == []
    assert {p.name: p.stat().st_mtime_ns for p in to.glob("*.kept.jsonl.gz")} == before
    fetch("replay", tmp_path / "reference", mirror, options=OPTIONS)
    assert _outputs(to) == _outputs(tmp_path / "reference")


def test_dry_run_heads_only(mirror: Mirror, tmp_path: Path) -> None:
    report = download.run(
        "replay",
        tmp_path / "replay",
        base_url=mirror.url,
        dry_run=True,
        options=OPTIONS,
        console=Console(file=io.StringIO(), width=250),
    )
    sizes = {p.url.rsplit("/", 1)[1]: p.est_bytes for p in report.planned}
    assert sizes == {n: (FIXTURES / "redpajama" / n).stat().st_size for n in FILES}
    assert mirror.seen("GET") == [] and len(mirror.seen("HEAD")) == 6
    assert not (tmp_path / "replay").exists()
