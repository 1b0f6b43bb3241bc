"""corpus.megatron_shards against megatron-core 0.16.1 itself: byte-identical shards, each side
reading the other's, atomic writes, clear errors, and blends that BlendedMegatronDatasetBuilder
turns into train/valid/test GPTDatasets."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder

from corpus import megatron_shards
from corpus.megatron_shards import (
    ShardInfo,
    ShardWriter,
    dtype_for_vocab,
    file_sha256,
    read_blends,
    read_shard,
    write_blends,
    write_shard,
)

REPO = Path(__file__).resolve().parents[1]
EOD = 0


def random_docs(seed: int, n_docs: int, high: int, max_len: int = 300) -> list[np.ndarray]:
    """n_docs documents of 0..max_len random ids below ``high``, each ending with EOD; a few
    are EOD alone (length 1)."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n_docs):
        body = rng.integers(1, high, size=0 if i % 7 == 3 else rng.integers(0, max_len))
        docs.append(np.append(body, EOD).astype(np.int64))
    return docs


def megatron_write(prefix: Path, docs: list[np.ndarray], dtype: type[np.number]) -> None:
    builder = IndexedDatasetBuilder(f"{prefix}.bin", dtype=dtype)
    for doc in docs:
        builder.add_item(torch.tensor(doc))
        builder.end_document()
    builder.finalize(f"{prefix}.idx")


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


CASES = {
    "uint16-one-doc": (np.uint16, [np.array([17, 65535, EOD])]),
    "uint16-one-token": (np.uint16, [np.array([EOD])]),
    "uint16-many": (np.uint16, random_docs(1, 200, 65536)),
    "int32-many": (np.int32, random_docs(2, 150, 2**31 - 1)),
    "int32-small-ids": (np.int32, random_docs(3, 40, 50)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_byte_identical_to_indexed_dataset_builder(tmp_path: Path, case: str) -> None:
    dtype, docs = CASES[case]
    info = write_shard(tmp_path / "ours", docs, dtype)
    megatron_write(tmp_path / "theirs", docs, dtype)

    for ext in ("bin", "idx"):
        ours = (tmp_path / f"ours.{ext}").read_bytes()
        theirs = (tmp_path / f"theirs.{ext}").read_bytes()
        assert ours == theirs, f".{ext} differs"
    assert info == ShardInfo(
        prefix=str(tmp_path / "ours"),
        n_docs=len(docs),
        n_tokens=sum(len(d) for d in docs),
        dtype=np.dtype(dtype).name,
        bin_sha256=file_sha256(tmp_path / "theirs.bin"),
        idx_sha256=file_sha256(tmp_path / "theirs.idx"),
        bin_bytes=(tmp_path / "theirs.bin").stat().st_size,
    )


def test_index_written_in_chunks_is_identical(tmp_path: Path, monkeypatch) -> None:
    # Pointers and document indices are streamed in chunks; a tiny chunk puts many chunk
    # boundaries (and a running byte offset) under test.
    monkeypatch.setattr(megatron_shards, "_INDEX_CHUNK", 3)
    docs = random_docs(4, 50, 65536, max_len=20)
    write_shard(tmp_path / "ours", docs, np.uint16)
    megatron_write(tmp_path / "theirs", docs, np.uint16)
    assert (tmp_path / "ours.idx").read_bytes() == (tmp_path / "theirs.idx").read_bytes()


def test_inputs_as_lists_and_narrow_arrays(tmp_path: Path) -> None:
    docs = random_docs(5, 30, 65536)
    write_shard(tmp_path / "arrays", docs, np.uint16)
    as_lists = [[int(t) for t in d] for d in docs]
    write_shard(tmp_path / "lists", as_lists, "uint16")
    write_shard(tmp_path / "narrow", [d.astype(np.uint16) for d in docs], np.dtype("uint16"))
    for prefix in ("lists", "narrow"):
        for ext in ("bin", "idx"):
            assert (tmp_path / f"{prefix}.{ext}").read_bytes() == (
                tmp_path / f"arrays.{ext}"
            ).read_bytes()


@pytest.mark.parametrize("dtype", [np.uint16, np.int32])
def test_megatron_indexed_dataset_reads_our_shard(tmp_path: Path, dtype) -> None:
    docs = random_docs(6, 120, 65536 if dtype is np.uint16 else 2**31 - 1)
    write_shard(tmp_path / "ours", docs, dtype)

    dataset = IndexedDataset(str(tmp_path / "ours"))
    assert len(dataset) == len(docs)
    assert dataset.index.dtype is dtype
    assert dataset.sequence_lengths.tolist() == [len(d) for d in docs]
    assert dataset.document_indices.tolist() == list(range(len(docs) + 1))
    for i, doc in enumerate(docs):
        assert dataset[i].tolist() == doc.tolist()
    # A slice and an offset read go through the pointers, not just sequential order.
    assert dataset.get(5, offset=1, length=2).tolist() == docs[5][1:3].tolist()


def test_our_reader_reads_megatron_shard(tmp_path: Path) -> None:
    docs = random_docs(7, 90, 65536)
    megatron_write(tmp_path / "theirs", docs, np.uint16)

    with read_shard(tmp_path / "theirs") as reader:
        assert len(reader) == reader.n_docs == len(docs)
        assert reader.dtype == np.uint16
        assert reader.lengths.tolist() == [len(d) for d in docs]
        assert reader.document_indices.tolist() == list(range(len(docs) + 1))
        assert reader.n_tokens == sum(len(d) for d in docs)
        for i, doc in enumerate(docs):
            assert reader[i].tolist() == doc.tolist()
        assert reader[-1].tolist() == docs[-1].tolist()
        assert [s.tolist() for s in reader] == [d.tolist() for d in docs]
        with pytest.raises(IndexError):
            reader[len(docs)]


def test_our_reader_reads_multi_sequence_documents(tmp_path: Path) -> None:
    # Megatron allows several sequences per document (e.g. sentence splitting); the reader
    # must not assume one per document when reading shards written elsewhere.
    builder = IndexedDatasetBuilder(str(tmp_path / "multi.bin"), dtype=np.int32)
    for seqs in ([[1, 2], [3]], [[4, 5, 6, EOD]], [[7], [8], [EOD]]):
        for seq in seqs:
            builder.add_item(torch.tensor(seq))
        builder.end_document()
    builder.finalize(str(tmp_path / "multi.idx"))

    reader = read_shard(tmp_path / "multi")
    assert len(reader) == 6
    assert reader.n_docs == 3
    assert reader.document_indices.tolist() == [0, 2, 3, 6]
    assert [reader[i].tolist() for i in range(6)] == [[1, 2], [3], [4, 5, 6, 0], [7], [8], [0]]


def test_finished_writer_leaves_exactly_bin_and_idx(tmp_path: Path) -> None:
    docs = random_docs(8, 25, 65536)
    with ShardWriter(tmp_path / "shard", np.uint16) as writer:
        indices = [writer.add(doc) for doc in docs]
        assert len(writer) == len(docs)
        # Until close() only a temporary .bin exists, never the final names.
        (tmp,) = files_in(tmp_path)
        assert tmp.startswith("shard.bin.tmp-")
    assert indices == list(range(len(docs)))
    assert files_in(tmp_path) == ["shard.bin", "shard.idx"]
    info = writer.info
    assert info is not None
    assert writer.close() is info
    assert info.bin_sha256 == file_sha256(tmp_path / "shard.bin")
    assert info.idx_sha256 == file_sha256(tmp_path / "shard.idx")
    assert info.bin_bytes == (tmp_path / "shard.bin").stat().st_size == 2 * info.n_tokens
    with pytest.raises(ValueError, match="closed"):
        writer.add([1, EOD])


def test_exception_inside_writer_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), ShardWriter(tmp_path / "s", np.uint16) as w:
        for doc in random_docs(9, 20, 65536):
            w.add(doc)
        raise RuntimeError("boom")
    assert files_in(tmp_path) == []

    # A rejected document inside the with block aborts the shard the same way.
    with pytest.raises(ValueError), ShardWriter(tmp_path / "s", np.uint16) as w:
        w.add([1, 2, EOD])
        w.add([70_000, EOD])
    assert files_in(tmp_path) == []


def test_writer_dropped_without_close_removes_its_temp_file(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path / "s", np.uint16)
    writer.add([1, EOD])
    assert len(files_in(tmp_path)) == 1
    del writer
    gc.collect()
    assert files_in(tmp_path) == []


def test_failed_rewrite_keeps_previous_shard(tmp_path: Path) -> None:
    first = write_shard(tmp_path / "s", [[1, 2, EOD]], np.uint16)
    with pytest.raises(RuntimeError), ShardWriter(tmp_path / "s", np.uint16) as w:
        w.add([3, EOD])
        raise RuntimeError("fail")
    assert files_in(tmp_path) == ["s.bin", "s.idx"]
    assert file_sha256(tmp_path / "s.bin") == first.bin_sha256

    second = write_shard(tmp_path / "s", [[4, 5, 6, EOD]], np.uint16)
    assert files_in(tmp_path) == ["s.bin", "s.idx"]
    assert file_sha256(tmp_path / "s.idx") == second.idx_sha256
    assert read_shard(tmp_path / "s")[0].tolist() == [4, 5, 6, EOD]


def test_shard_without_documents_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no documents"):
        write_shard(tmp_path / "empty", [], np.uint16)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    ("dtype", "doc", "message"),
    [
        (np.uint16, [], "empty document"),
        (np.uint16, np.array([], dtype=np.int64), "empty document"),
        (np.uint16, [1, 65536, EOD], "65536 out of range for uint16"),
        (np.uint16, [-1, EOD], "-1 out of range for uint16"),
        (np.int32, [2**31, EOD], "out of range for int32"),
        (np.int32, [-(2**31) - 1, EOD], "out of range for int32"),
        (np.int32, [2**70, EOD], "integers"),
        (np.uint16, [1.5, EOD], "integers"),
        (np.uint16, np.array([True, False]), "integers"),
        (np.uint16, ["a", "b"], "integers"),
        (np.uint16, [[1, 2], [3, EOD]], "1-D"),
        (np.uint16, 5, "1-D"),
    ],
)
def test_add_rejects_bad_documents(tmp_path: Path, dtype, doc, message: str) -> None:
    with ShardWriter(tmp_path / "s", dtype) as writer:
        with pytest.raises(ValueError, match=message):
            writer.add(doc)
        writer.add([3, EOD])
    assert read_shard(tmp_path / "s")[0].tolist() == [3, EOD]


def test_extreme_ids_in_range_are_kept(tmp_path: Path) -> None:
    write_shard(tmp_path / "u", [[0, 65535]], np.uint16)
    write_shard(tmp_path / "i", [[-(2**31), 2**31 - 1]], np.int32)
    assert read_shard(tmp_path / "u")[0].tolist() == [0, 65535]
    assert read_shard(tmp_path / "i")[0].tolist() == [-(2**31), 2**31 - 1]


def test_unsupported_dtype_rejected(tmp_path: Path) -> None:
    for dtype in (np.float32, "uint32", "not-a-dtype"):
        with pytest.raises((ValueError, TypeError)):
            ShardWriter(tmp_path / "s", dtype)
    assert files_in(tmp_path) == []


def test_dtype_for_vocab() -> None:
    assert dtype_for_vocab(32_000) == np.uint16
    assert dtype_for_vocab(65_499) == np.uint16
    assert dtype_for_vocab(65_500) == np.int32
    assert dtype_for_vocab(128_256) == np.int32
    with pytest.raises(ValueError):
        dtype_for_vocab(0)
    with pytest.raises(TypeError):
        dtype_for_vocab(3.5)  # type: ignore[arg-type]


def test_reader_detects_damaged_files(tmp_path: Path) -> None:
    docs = random_docs(10, 30, 65536)
    write_shard(tmp_path / "good", docs, np.uint16)
    good_bin = (tmp_path / "good.bin").read_bytes()
    good_idx = (tmp_path / "good.idx").read_bytes()

    def damaged(bin_bytes: bytes, idx_bytes: bytes) -> str:
        (tmp_path / "bad.bin").write_bytes(bin_bytes)
        (tmp_path / "bad.idx").write_bytes(idx_bytes)
        return str(tmp_path / "bad")

    with pytest.raises(ValueError, match=r"bad\.bin: truncated"):
        read_shard(damaged(good_bin[:-2], good_idx))
    with pytest.raises(ValueError, match="longer than its index"):
        read_shard(damaged(good_bin + b"\0\0", good_idx))
    with pytest.raises(ValueError, match="not a Megatron index"):
        read_shard(damaged(good_bin, b"XXXXXXXXX" + good_idx[9:]))
    with pytest.raises(ValueError, match="version 2"):
        read_shard(damaged(good_bin, good_idx[:9] + (2).to_bytes(8, "little") + good_idx[17:]))
    with pytest.raises(ValueError, match="dtype code 7"):
        read_shard(damaged(good_bin, good_idx[:17] + b"\x07" + good_idx[18:]))
    with pytest.raises(ValueError, match=r"bad\.idx: truncated"):
        read_shard(damaged(good_bin, good_idx[:-8]))
    with pytest.raises(ValueError, match="truncated index"):
        read_shard(damaged(good_bin, good_idx[:20]))
    # Swap two lengths: sizes still add up, but the pointers no longer follow the lengths.
    lengths = np.frombuffer(good_idx, "<i4", 30, 34).copy()
    lengths[[0, 1]] = lengths[[1, 0]]
    assert lengths[0] != lengths[1]
    swapped = good_idx[:34] + lengths.tobytes() + good_idx[34 + 4 * 30 :]
    with pytest.raises(ValueError, match="pointers"):
        read_shard(damaged(good_bin, swapped))
    (tmp_path / "bad.bin").unlink()
    with pytest.raises(FileNotFoundError):
        read_shard(tmp_path / "bad")


def test_blends_round_trip_and_text_format(tmp_path: Path) -> None:
    blends = {
        "train": [(0.3, "/data/shards/pmc_000"), (0.7, "/data/shards/pubmed_000")],
        "valid": [(1.0, "/data/shards/valid_000")],
        "test": [(1e-05, "rel/test_000"), (2, "rel/test_001")],
    }
    paths = write_blends(tmp_path, blends)
    assert paths == {
        "train": tmp_path / "blend_train.txt",
        "valid": tmp_path / "blend_valid.txt",
        "test": tmp_path / "blend_test.txt",
        "json": tmp_path / "blends.json",
    }
    assert files_in(tmp_path) == sorted(p.name for p in paths.values())
    assert paths["train"].read_text() == "0.3 /data/shards/pmc_000 0.7 /data/shards/pubmed_000\n"
    assert paths["valid"].read_text() == "1.0 /data/shards/valid_000\n"
    assert paths["test"].read_text() == "1e-05 rel/test_000 2.0 rel/test_001\n"
    assert json.loads(paths["json"].read_text())["train"] == [
        {"weight": 0.3, "prefix": "/data/shards/pmc_000"},
        {"weight": 0.7, "prefix": "/data/shards/pubmed_000"},
    ]
    assert read_blends(tmp_path) == {
        split: [(float(w), p) for w, p in entries] for split, entries in blends.items()
    }
    # Weights survive the text form exactly: the repr is the shortest round-tripping one.
    words = paths["train"].read_text().split()
    assert [float(w) for w in words[::2]] == [0.3, 0.7]


def test_empty_split_omitted_and_stale_blend_removed(tmp_path: Path) -> None:
    write_blends(tmp_path, {"train": [(1.0, "a")], "valid": [(1.0, "b")], "test": [(1.0, "c")]})
    paths = write_blends(tmp_path, {"train": [(1.0, "a")], "valid": [], "test": [(0.5, "c")]})
    assert sorted(paths) == ["json", "test", "train"]
    assert files_in(tmp_path) == ["blend_test.txt", "blend_train.txt", "blends.json"]
    assert read_blends(tmp_path) == {"train": [(1.0, "a")], "test": [(0.5, "c")]}


@pytest.mark.parametrize(
    ("blends", "message"),
    [
        ({"train": [(1.0, "/data/my shard")]}, "whitespace"),
        ({"train": [(1.0, "a\tb")]}, "whitespace"),
        ({"train": [(1.0, "")]}, "empty"),
        ({"train": [(0.0, "a")]}, "> 0"),
        ({"train": [(1.0, "a"), (-0.5, "b")]}, "> 0"),
        ({"train": [(float("nan"), "a")]}, "finite"),
        ({"train": [("1", "a")]}, "number"),
        ({"train": [(1.0, "a")], "validation": [(1.0, "b")]}, "unknown splits"),
        ({"train": [], "valid": []}, "no split"),
    ],
)
def test_bad_blends_rejected(tmp_path: Path, blends, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_blends(tmp_path / "out", blends)
    assert not (tmp_path / "out").exists() or files_in(tmp_path / "out") == []


# Runs in a child process: megatron-core loops forever on an empty split, and a timeout on
# the child turns such a hang into a failure. Reads the blends exactly as Megatron-LM does
# (the words of blend_<split>.txt through get_blend_from_list).
GPT_BUILD = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from megatron.core.datasets.blended_megatron_dataset_builder import (
        BlendedMegatronDatasetBuilder,
    )
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
    from megatron.core.datasets.utils import get_blend_from_list

    work = sys.argv[1]

    class Tokenizer:
        vocab_size = 1000
        eod = 0
        unique_identifiers = {"class": "TestTokenizer", "vocab_size": 1000}

    # BlendedDataset calls torch.distributed.get_rank() when path_to_cache is set, so a
    # one-process gloo group is needed even on the CPU.
    torch.distributed.init_process_group(
        "gloo", init_method="file://" + os.path.join(work, "pg"), rank=0, world_size=1
    )
    blend_per_split = []
    for split in ("train", "valid", "test"):
        with open(os.path.join(work, "blends", f"blend_{split}.txt")) as f:
            blend_per_split.append(get_blend_from_list(f.read().split()))
    config = GPTDatasetConfig(
        random_seed=1234,
        sequence_length=16,
        blend_per_split=blend_per_split,
        path_to_cache=os.path.join(work, "cache"),
        tokenizer=Tokenizer(),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        mid_level_dataset_surplus=0.005,
    )
    datasets = BlendedMegatronDatasetBuilder(
        GPTDataset, [64, 16, 16], lambda: True, config
    ).build()
    out = {"blend_per_split": blend_per_split}
    for split, dataset in zip(("train", "valid", "test"), datasets):
        samples = [dataset[i] for i in range(len(dataset))]
        out[split] = {
            "class": type(dataset).__name__,
            "len": len(dataset),
            "token_shapes": sorted({tuple(s["tokens"].shape) for s in samples}),
            "tokens": sorted({int(t) for s in samples for t in s["tokens"]}),
        }
    torch.distributed.destroy_process_group()
    print("RESULT " + json.dumps(out))
    """
)


def test_gpt_datasets_build_from_written_blends(tmp_path: Path) -> None:
    shards = tmp_path / "shards"
    shards.mkdir()
    # Each shard has its own id range, so every sample shows which shards fed it.
    id_ranges = {"train_a": (100, 200), "train_b": (200, 300), "valid": (300, 400)}
    id_ranges["test"] = (400, 500)
    prefixes = {}
    for seed, (name, (low, high)) in enumerate(id_ranges.items()):
        rng = np.random.default_rng(seed)
        docs = [np.append(rng.integers(low, high, rng.integers(1, 40)), EOD) for _ in range(30)]
        prefixes[name] = write_shard(shards / name, docs, dtype_for_vocab(1000)).prefix
    write_blends(
        tmp_path / "blends",
        {
            "train": [(0.3, prefixes["train_a"]), (0.7, prefixes["train_b"])],
            "valid": [(1.0, prefixes["valid"])],
            "test": [(1.0, prefixes["test"])],
        },
    )

    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", GPT_BUILD, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"GPTDataset build hung (empty split?): {exc.stderr}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    result = json.loads(line.removeprefix("RESULT "))

    assert result["blend_per_split"] == [
        [[prefixes["train_a"], prefixes["train_b"]], [0.3, 0.7]],
        [[prefixes["valid"]], [1.0]],
        [[prefixes["test"]], [1.0]],
    ]
    assert result["train"]["class"] == "BlendedDataset"
    assert result["valid"]["class"] == result["test"]["class"] == "GPTDataset"
    allowed = {
        "train": set(range(100, 300)),
        "valid": set(range(300, 400)),
        "test": set(range(400, 500)),
    }
    for split, ids in allowed.items():
        summary = result[split]
        assert summary["len"] > 0
        assert summary["token_shapes"] == [[16]]
        tokens = set(summary["tokens"])
        assert tokens <= ids | {EOD}, f"{split} drew tokens from another split's shards"
        assert len(tokens) > 20
    # Both train shards contribute to the blend.
    assert any(t < 200 for t in result["train"]["tokens"])
    assert any(t >= 200 for t in result["train"]["tokens"])
    # The index caches went to path_to_cache, not beside the shards.
    assert any((tmp_path / "cache").iterdir())
    assert sorted(p.name for p in shards.iterdir()) == sorted(
        f"{name}.{ext}" for name in id_ranges for ext in ("bin", "idx")
    )
