"""The gold layer end to end on the embedded sample (`gapreplay corpus`): decontamination,
the mix and its splits, shards that megatron-core reads and trains from, lineage back to
silver, the `datasets` export, and the pipeline skipping what has not changed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pyspark.sql import functions as F

from corpus.megatron_shards import file_sha256, read_blends, read_shard
from corpus.sampler import select
from corpus.splits import assign_split
from corpus.tokenizer import load_tokenizer
from schemas.gold import CORPUS, LINEAGE, SHARDS
from schemas.silver import DECISIONS, DOCUMENTS
from spark_jobs.config import ShardsConfig
from spark_jobs.mix import with_splits
from spark_jobs.pipeline import run_corpus
from spark_jobs.shards import shards
from spark_jobs.tables import read_table
from tests.conftest import REPO


@pytest.fixture(scope="module")
def built(spark, sample_build):
    root = sample_build.root

    def table(spec):  # type: ignore[no-untyped-def]
        return read_table(spark, root, spec)

    return SimpleNamespace(
        config=sample_build.config,
        root=root,
        out=sample_build.out,
        results=sample_build.results,
        table=table,
        corpus={r.doc_id: r for r in table(CORPUS).collect()},
        texts={r.doc_id: r.text for r in table(DOCUMENTS).select("doc_id", "text").collect()},
        shards=[r.asDict() for r in table(SHARDS).collect()],
        lineage=[r.asDict() for r in table(LINEAGE).collect()],
    )


def test_every_source_and_split_reaches_the_shards(built) -> None:
    assert [r.stage for r in built.results][-4:] == ["decontaminate", "mix", "shards", "export"]
    assert {s["source"] for s in built.shards} == {"pubmed", "pmc", "guidelines", "replay"}
    assert set(read_blends(built.out)) == {"train", "valid", "test"}
    # max_tokens_per_file 400: a source bigger than that is cut into several files.
    assert max(s["file_index"] for s in built.shards) >= 1
    # A file is cut where its running sum reaches the limit: all but its last sequence fit.
    for shard in built.shards:
        rows = sorted(
            (r["seq_index"], r["n_tokens"]) for r in built.lineage if r["prefix"] == shard["prefix"]
        )
        assert sum(n for _, n in rows) == shard["n_tokens"]
        assert sum(n for _, n in rows[:-1]) < 400


def test_decontamination_and_replay_sampling_decisions(built) -> None:
    decisions = {
        (r.doc_id, r.stage): r for r in built.table(DECISIONS).filter("NOT kept").collect()
    }
    planted = decisions[("pubmed:39000006", "decontamination")]
    assert planted.reason == "benchmark_pmid" and "pubmedqa:39000006" in planted.detail
    overlap = [d for (doc, stage), d in decisions.items() if stage == "decontamination"]
    assert {d.reason for d in overlap} == {"benchmark_pmid", "benchmark_overlap"}
    copied = next(d for d in overlap if d.reason == "benchmark_overlap")
    assert copied.source == "replay" and '"benchmark":"medqa"' in copied.detail
    assert all(doc not in built.corpus for doc, _ in decisions)
    not_sampled = [d for (_, stage), d in decisions.items() if stage == "mix"]
    assert not_sampled and {d.reason for d in not_sampled} == {"replay_not_sampled"}


def test_replay_sample_is_the_samplers_choice_within_the_budget(built) -> None:
    rows = built.corpus.values()
    domain = sum(r.n_tokens * r.epochs for r in rows if r.source != "replay" and r.split == "train")
    share = built.config.mix.replay.share
    budget = int(domain * share / (1 - share))
    excluded = {
        r.doc_id
        for r in built.table(DECISIONS).filter("stage = 'decontamination' AND NOT kept").collect()
    }
    tokenizer = load_tokenizer(built.out / "tokenizer")
    pool = [
        (r.doc_id, r.origin, r.text)
        for r in built.table(DOCUMENTS).filter("source = 'replay'").collect()
        if r.doc_id not in excluded
    ]
    counts = [len(ids) + 1 for ids in tokenizer.encode_batch([t for _, _, t in pool])]
    docs = [(d, o, n) for (d, o, _), n in zip(pool, counts, strict=True)]
    expected = select(docs, budget, None, built.config.mix.seed)
    assert {r.doc_id for r in rows if r.source == "replay"} == expected
    assert 0 < len(expected) < len(pool)


def test_splits_follow_the_seeded_hash(built) -> None:
    heldout = {s: m.heldout for s, m in built.config.mix.sources.items()}
    for doc_id, row in built.corpus.items():
        expected = assign_split(doc_id, built.config.mix.seed, heldout[row.source], 0.5)
        assert row.split == expected, doc_id


def test_shards_read_back_to_the_silver_text(built) -> None:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    tokenizer = load_tokenizer(built.out / "tokenizer")
    by_prefix: dict[str, list[dict]] = {}
    for row in built.lineage:
        by_prefix.setdefault(row["prefix"], []).append(row)
    assert set(by_prefix) == {s["prefix"] for s in built.shards}
    for shard in built.shards:
        dataset = IndexedDataset(shard["prefix"])
        ours = read_shard(shard["prefix"])
        assert len(dataset) == shard["n_docs"] == len(ours)
        assert file_sha256(shard["prefix"] + ".bin") == shard["bin_sha256"]
        assert file_sha256(shard["prefix"] + ".idx") == shard["idx_sha256"]
        for row in sorted(by_prefix[shard["prefix"]], key=lambda r: r["seq_index"]):
            tokens = dataset[row["seq_index"]]
            assert np.array_equal(tokens, ours[row["seq_index"]])
            assert len(tokens) == row["n_tokens"] and tokens[-1] == tokenizer.eod_id
            assert tokenizer.decode(tokens[:-1].tolist()) == built.texts[row["doc_id"]]


def test_token_counts_agree_across_gold_tables(built) -> None:
    lineage_tokens: dict[str, int] = {}
    for row in built.lineage:
        lineage_tokens[row["prefix"]] = lineage_tokens.get(row["prefix"], 0) + row["n_tokens"]
    assert lineage_tokens == {s["prefix"]: s["n_tokens"] for s in built.shards}
    assert sum(lineage_tokens.values()) == sum(r.n_tokens for r in built.corpus.values())
    assert sorted(r["doc_id"] for r in built.lineage) == sorted(built.corpus)
    assert set(built.corpus) <= set(built.texts)


def test_megatron_builds_every_split_from_the_blends(built, tmp_path) -> None:
    # A split with no documents makes GPTDataset loop forever (STACK.md): a timeout turns
    # that into a failure.
    script = textwrap.dedent(
        f"""
        import json, torch
        from collections import OrderedDict
        from megatron.core.datasets.blended_megatron_dataset_builder import (
            BlendedMegatronDatasetBuilder,
        )
        from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
        from corpus.megatron_shards import read_blends

        torch.distributed.init_process_group(
            "gloo", init_method="file://{tmp_path}/pg", rank=0, world_size=1
        )
        meta = json.load(open("{built.out}/tokenizer/tokenizer_meta.json"))

        class Tok:
            vocab_size = meta["vocab_size"]
            eod = meta["eod_id"]
            unique_identifiers = OrderedDict(name=meta["name"])

        blends = read_blends("{built.out}")
        per_split = [
            ([p for _, p in blends[s]], [w for w, _ in blends[s]])
            for s in ("train", "valid", "test")
        ]
        config = GPTDatasetConfig(
            random_seed=1234, sequence_length=32, blend_per_split=per_split,
            tokenizer=Tok(), reset_position_ids=False, reset_attention_mask=False,
            eod_mask_loss=False, path_to_cache="{tmp_path}/cache",
        )
        built = BlendedMegatronDatasetBuilder(
            GPTDataset, [16, 4, 4], lambda: True, config
        ).build()
        print(json.dumps([[len(d), int(d[0]["tokens"].shape[0])] for d in built]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sizes = json.loads(done.stdout.strip().splitlines()[-1])
    assert [n >= want for (n, _), want in zip(sizes, (16, 4, 4), strict=True)] == [True] * 3
    assert all(length == 32 for _, length in sizes)


def test_shards_are_byte_identical_with_other_partition_counts(built, spark, tmp_path) -> None:
    before = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "7")
    try:
        shards(spark, built.root, str(tmp_path / "again"), built.config.shards)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", before)
    again = {
        Path(r.prefix).relative_to(tmp_path / "again").as_posix(): (r.bin_sha256, r.idx_sha256)
        for r in built.table(SHARDS).collect()
    }
    first = {
        Path(s["prefix"]).relative_to(built.out).as_posix(): (s["bin_sha256"], s["idx_sha256"])
        for s in built.shards
    }
    assert again == first
    for name in first:
        for ext in (".bin", ".idx"):
            assert (built.out / (name + ext)).read_bytes() == (
                tmp_path / "again" / (name + ext)
            ).read_bytes()
    # Put the module's build back, for the tests after this one.
    shards(spark, built.root, str(built.out), built.config.shards)


def test_export_loads_with_datasets(built) -> None:
    import datasets

    export = built.out / "export"
    for fmt, pattern in (("parquet", "*.parquet"), ("json", "*.json")):
        folder = "parquet" if fmt == "parquet" else "jsonl"
        files = {
            split: str(export / folder / split / pattern)
            for split in ("train", "valid", "test")
            if (export / folder / split).is_dir()
        }
        loaded = datasets.load_dataset(fmt, data_files=files)
        rows = {r["id"]: r for split in loaded for r in loaded[split]}
        assert set(rows) == set(built.corpus)
        for doc_id, row in rows.items():
            assert row["text"] == built.texts[doc_id]
            assert row["split"] == built.corpus[doc_id].split
            assert set(row) == {"id", "text", "source", "split", "license"}


def test_pipeline_skips_what_has_not_changed(built, spark) -> None:
    # Stages run by hand (the shards test above) record no pipeline key: the first run
    # redoes them; then nothing is left to do.
    run_corpus(spark, built.config)
    assert run_corpus(spark, built.config) == []
    changed = built.config.model_copy(deep=True)
    changed.shards = ShardsConfig(max_tokens_per_file=10_000, seed=built.config.shards.seed)
    rerun = run_corpus(spark, changed)
    assert [r.stage for r in rerun] == ["shards", "export"]
    run_corpus(spark, built.config)  # back to the module's build


def test_split_of_a_document_never_depends_on_the_others(spark) -> None:
    from spark_jobs.config import MixConfig

    config = MixConfig()
    ids = [f"pubmed:{40_000_000 + i}" for i in range(5000)]
    frame = spark.createDataFrame([(i, "pubmed") for i in ids], "doc_id string, source string")
    one = {r.doc_id: r.split for r in with_splits(frame.repartition(1), config).collect()}
    many = {r.doc_id: r.split for r in with_splits(frame.repartition(9), config).collect()}
    fewer = with_splits(frame.filter(F.col("doc_id") < "pubmed:40002500"), config)
    assert one == many
    assert all(one[r.doc_id] == r.split for r in fewer.collect())
    assert all(one[i] == assign_split(i, config.seed, 0.03, 0.5) for i in ids[:500])
    held = sum(s != "train" for s in one.values()) / len(ids)
    test = sum(s == "test" for s in one.values()) / len(ids)
    assert abs(held - 0.03) < 0.01 and abs(test - 0.015) < 0.01


def test_licence_filter(spark) -> None:
    from spark_jobs.config import MixConfig
    from spark_jobs.mix import license_allowed

    frame = spark.createDataFrame(
        [(x,) for x in ("cc-by", "cc-by-nc", "cc0", "unknown", "cc-by-nc-nd")], "license string"
    )

    def kept(config: MixConfig) -> set[str]:
        return {r.license for r in frame.filter(license_allowed(config)).collect()}

    assert kept(MixConfig()) == {"cc-by", "cc-by-nc", "cc0", "unknown", "cc-by-nc-nd"}
    assert kept(MixConfig(commercial_only=True)) == {"cc-by", "cc0"}
    assert kept(MixConfig(licenses=["cc-by-nc", "cc0"])) == {"cc-by-nc", "cc0"}
