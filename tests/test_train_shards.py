"""train.shards: the shards directory contract (blends.json, tokenizer meta)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.shards import ShardsError, read_blends, read_tokenizer_meta


def write(root: Path, blends: object, shards: dict[str, bytes] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in (shards if shards is not None else {"a": b"\x01\x00"}).items():
        (root / f"{name}.bin").write_bytes(data)
        (root / f"{name}.idx").write_bytes(b"MMIDIDX\x00\x00")
    (root / "blends.json").write_text(json.dumps(blends))
    return root


def test_prefixes_resolve_against_the_directory(tmp_path: Path) -> None:
    other = write(tmp_path / "elsewhere", {"train": [{"weight": 1, "prefix": "a"}]})
    root = write(
        tmp_path / "shards",
        {
            "train": [{"weight": 2, "prefix": "a"}, {"weight": 0.5, "prefix": str(other / "a")}],
            "valid": [],
        },
    )
    blends = read_blends(root)
    assert blends == {"train": [(2.0, str(root / "a")), (0.5, str(other / "a"))]}


@pytest.mark.parametrize(
    ("blends", "shards", "message"),
    [
        ({"valid": [{"weight": 1, "prefix": "a"}]}, None, "no train split"),
        ({"train": [{"weight": 1, "prefix": "b"}]}, None, r"b\.bin is missing"),
        ({"train": [{"weight": 1, "prefix": "a"}]}, {"a": b""}, "holds no tokens"),
        ({"train": [{"weight": 0, "prefix": "a"}]}, None, "finite and > 0"),
        ({"train": [{"weight": True, "prefix": "a"}]}, None, "must be a number"),
        ({"train": [{"prefix": "a"}]}, None, "need weight and prefix"),
        ({"train": {"weight": 1}}, None, "bad split entry 'train'"),
        ({"train": [{"weight": 1, "prefix": "a"}], "dev": []}, None, "bad split entry 'dev'"),
        ([1, 2], None, "expected a JSON object"),
    ],
)
def test_bad_blends_are_refused(
    tmp_path: Path, blends: object, shards: dict[str, bytes] | None, message: str
) -> None:
    with pytest.raises(ShardsError, match=message):
        read_blends(write(tmp_path, blends, shards))


def test_missing_blends_file(tmp_path: Path) -> None:
    with pytest.raises(ShardsError, match=r"blends\.json"):
        read_blends(tmp_path)


def meta_dir(tmp_path: Path, meta: object) -> Path:
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "tokenizer_meta.json").write_text(json.dumps(meta))
    return tmp_path


def test_tokenizer_meta(tmp_path: Path) -> None:
    root = meta_dir(
        tmp_path,
        {
            "kind": "sentencepiece",
            "name": "llama2+",
            "vocab_size": 32017,
            "eod_id": 32002,
            "extra": "ignored",
        },
    )
    (root / "tokenizer" / "tokenizer.model").write_bytes(b"sp")
    meta = read_tokenizer_meta(root)
    assert (meta.kind, meta.name, meta.vocab_size, meta.eod_id) == (
        "sentencepiece",
        "llama2+",
        32017,
        32002,
    )
    assert meta.sentencepiece_model == root / "tokenizer" / "tokenizer.model"
    assert meta.tokenizer_json is None


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"kind": "wordpiece", "vocab_size": 10, "eod_id": 1}, "kind must be"),
        ({"kind": "bpe", "vocab_size": "10", "eod_id": 1}, "vocab_size must be"),
        ({"kind": "bpe", "vocab_size": 10, "eod_id": 10}, "eod_id must be"),
        ({"kind": "bpe", "vocab_size": 10}, "eod_id must be"),
    ],
)
def test_bad_tokenizer_meta(tmp_path: Path, meta: dict, message: str) -> None:
    with pytest.raises(ShardsError, match=message):
        read_tokenizer_meta(meta_dir(tmp_path, meta))
