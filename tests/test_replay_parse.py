"""Replay JSONL readers over the real RedPajama / Dolma fixtures and hand-made bad lines."""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from pathlib import Path

import pytest

from corpus.quarantine import Quarantined
from corpus.replay_jsonl import SUBSETS, parse_replay_file, subset_from_filename

REDPAJAMA = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "redpajama"
# file -> (records, subset), from fixtures/SOURCES.md
EXPECTED = {
    "rp_arxiv_sample.jsonl": (11, "arxiv"),
    "redpajama-c4-refined.jsonl": (10, "c4"),
    "redpajama-cc-2023-06-refined.jsonl": (10, "common_crawl"),
    "redpajama-pile-stackexchange-refined.jsonl": (10, "stackexchange"),
    "the-pile-nih-refined.jsonl": (10, "pile"),
    "dolma_cc_en_head-0091.jsonl": (10, "common_crawl"),
    "dolma_documents_000.json.gz": (10, "common_crawl"),
}
ROW_TYPES = {
    "doc_id": str,
    "subset": str,
    "text": str,
    "meta": dict,
    "url": (str, type(None)),
    "language": (str, type(None)),
    "locator": str,
}


def parse(path: Path) -> list:
    return list(parse_replay_file(str(path)))


def test_every_fixture_is_covered() -> None:
    assert sorted(p.name for p in REDPAJAMA.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_counts_subsets_and_row_shape(name: str) -> None:
    count, subset = EXPECTED[name]
    rows = parse(REDPAJAMA / name)
    assert len(rows) == count
    assert all(isinstance(r, dict) for r in rows)
    assert {r["subset"] for r in rows} == {subset}
    assert [r["locator"] for r in rows] == [f"line={i}" for i in range(1, count + 1)]
    assert len({r["doc_id"] for r in rows}) == count
    for row in rows:
        assert set(row) == set(ROW_TYPES)
        for key, types in ROW_TYPES.items():
            assert isinstance(row[key], types), key
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in row["meta"].items())
        assert row["doc_id"].startswith(f"replay:{subset}:")
        assert row["text"]
    assert parse(REDPAJAMA / name) == rows  # deterministic


def test_arxiv_record_fields() -> None:
    first = parse(REDPAJAMA / "rp_arxiv_sample.jsonl")[0]
    assert first["doc_id"] == "replay:arxiv:1712.01076"
    assert first["text"] == "\\section{Riemannian Langevin dynamics}"
    assert first["url"] == "https://arxiv.org/abs/1712.01076"
    assert first["language"] == "en"
    assert first["meta"] == {
        "arxiv_id": "1712.01076",
        "language": "en",
        "source": "arxiv",
        "timestamp": "1512465451000",
        "url": "https://arxiv.org/abs/1712.01076",
        "yymm": "1712",
    }


def test_dolma_gzip_record_fields() -> None:
    first = parse(REDPAJAMA / "dolma_documents_000.json.gz")[0]
    # The id and metadata.url of this real record differ; each field keeps its own.
    assert first["doc_id"] == (
        "replay:common_crawl:http://advocatesaz.org/tag/antibiotic-resistant-bacteria/"
    )
    assert first["url"] == "http://advocatesaz.org/tag/good-cholesterol/"
    assert first["language"] == "en"
    assert first["text"].startswith("PPAA Home\nAbout Our Blog\n")
    meta = first["meta"]
    assert meta["id"] == "http://advocatesaz.org/tag/antibiotic-resistant-bacteria/"
    assert meta["source"] == "common-crawl"
    assert meta["added"] == "2023-03-21T06:21:25.832498+00:00"
    assert meta["language_score"] == "0.95"
    assert meta["length"] == "6320"
    assert meta["line_ids"].startswith("[4,5,6,11,")
    assert meta["source_domain"] == "advocatesaz.org"


def test_text_only_records_get_a_text_hash_id() -> None:
    rows = parse(REDPAJAMA / "redpajama-c4-refined.jsonl")
    for row in rows:
        digest = hashlib.sha256(row["text"].encode("utf-8")).hexdigest()[:20]
        assert row["doc_id"] == f"replay:c4:{digest}"
        assert row["meta"] == {}
        assert row["url"] is None and row["language"] is None


def write(path: Path, lines: list[bytes], compress: bool) -> Path:
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


BAD_LINES = [
    json.dumps({"text": "first good", "meta": {"source": "arxiv", "arxiv_id": "1"}}).encode(),
    b'{"text": "unterminated',
    b"",
    b'{"text": "caf\xe9 latin-1"}',
    b"   ",
    b'["text", "an array"]',
    b'{"text": 5}',
    b'{"meta": {"url": "http://x"}}',
    b'{"text": "lone \\ud800 surrogate"}',
    b'{"text": "ok", "meta": "{\\"title\\": \\"\\\\udc00\\"}"}',
    b'{"text": "pair \\ud83d\\ude00 ok"}',
    json.dumps({"text": "last good"}).encode(),
]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_bad_lines_are_quarantined_and_the_rest_kept(tmp_path: Path, compress: bool) -> None:
    items = parse(write(tmp_path / "rp_c4_mixed.jsonl", BAD_LINES, compress))
    quarantined = [(q.locator, q.error_class) for q in items if isinstance(q, Quarantined)]
    assert quarantined == [
        ("line=2", "InvalidJson"),
        ("line=4", "InvalidUtf8"),
        ("line=6", "NotAnObject"),
        ("line=7", "MissingText"),
        ("line=8", "MissingText"),
        ("line=9", "InvalidUtf8"),
        ("line=10", "InvalidUtf8"),
    ]
    rows = [r for r in items if isinstance(r, dict)]
    assert [(r["locator"], r["subset"], r["text"]) for r in rows] == [
        ("line=1", "arxiv", "first good"),
        ("line=11", "c4", "pair \U0001f600 ok"),
        ("line=12", "c4", "last good"),
    ]
    assert rows[0]["doc_id"] == "replay:arxiv:1"


def test_bom_crlf_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "a"}\r\n\r\n{"text": "b"}')
    assert [r["text"] for r in parse(path)] == ["a", "b"]
    path.write_bytes(b"")
    assert parse(path) == []


def test_missing_file_is_quarantined(tmp_path: Path) -> None:
    (item,) = parse(tmp_path / "absent.jsonl")
    assert (item.locator, item.error_class) == ("file", "UnreadableInput")


def test_truncated_gzip_keeps_every_complete_line(tmp_path: Path) -> None:
    data = (REDPAJAMA / "rp_arxiv_sample.jsonl").read_bytes()
    packed = gzip.compress(data)
    cut = packed[: len(packed) // 2]
    readable = zlib.decompressobj(wbits=31).decompress(cut)
    complete = readable.count(b"\n")
    assert 0 < complete < 11
    path = tmp_path / "rp_arxiv_cut.jsonl.gz"
    path.write_bytes(cut)
    items = parse(path)
    full = parse(REDPAJAMA / "rp_arxiv_sample.jsonl")
    assert items[:-1] == full[:complete]
    tail = items[-1]
    assert isinstance(tail, Quarantined)
    assert (tail.locator, tail.error_class) == (f"line={complete + 1}", "TruncatedInput")


def test_truncated_real_gzip_fixture(tmp_path: Path) -> None:
    path = tmp_path / "dolma_documents_000.json.gz"
    path.write_bytes((REDPAJAMA / "dolma_documents_000.json.gz").read_bytes()[:-100])
    items = parse(path)
    assert isinstance(items[-1], Quarantined)
    assert items[-1].error_class == "TruncatedInput"
    assert all(isinstance(r, dict) for r in items[:-1])
    assert len(items[:-1]) >= 8


@pytest.mark.parametrize(
    ("record", "subset"),
    [
        ({"text": "t", "meta": {"redpajama_set_name": "RedPajamaWikipedia"}}, "wikipedia"),
        ({"text": "t", "meta": json.dumps({"source": "github"})}, "github"),
        ({"text": "t", "meta": "{}", "red_pajama_subset": "book"}, "book"),
        (
            {"text": "t", "meta": {"source": "cc/2019-30/en_head_0000.json.gz/line2"}},
            "common_crawl",
        ),
        ({"text": "t", "source": "stack_exchange"}, "stackexchange"),
        ({"text": "t", "source": "reddit"}, "other"),
        ({"text": "t"}, "c4"),
    ],
)
def test_record_label_beats_file_name(tmp_path: Path, record: dict, subset: str) -> None:
    (row,) = parse(write(tmp_path / "redpajama-c4.jsonl", [json.dumps(record).encode()], False))
    assert row["subset"] == subset
    assert row["subset"] in SUBSETS


def test_meta_is_flattened_and_lossless(tmp_path: Path) -> None:
    record = {
        "text": "t",
        "id": 42,
        "meta": {"language": [{"name": "C", "bytes": 3}], "nested": {"a": True, "b": None}},
        "url": "http://top",
    }
    (row,) = parse(write(tmp_path / "github.jsonl", [json.dumps(record).encode()], False))
    assert row["doc_id"] == "replay:github:42"
    assert row["language"] is None
    assert row["url"] == "http://top"
    assert row["meta"] == {
        "id": "42",
        "language": '[{"name":"C","bytes":3}]',
        "nested.a": "true",
        "nested.b": "null",
        "url": "http://top",
    }


@pytest.mark.parametrize(
    ("name", "subset"),
    [
        ("redpajama-c4-refined.jsonl", "c4"),
        ("rp_arxiv_sample", "arxiv"),
        ("redpajama-pile-stackexchange-refined.jsonl", "stackexchange"),
        ("the-pile-nih-refined.jsonl", "pile"),
        ("/data/common-crawl/2023-06/en_head_0000.json.gz", "other"),
        ("common-crawl_0001.jsonl", "common_crawl"),
        ("RedPajamaBook-0001.jsonl.gz", "book"),
        ("book_0001.jsonl.gz", "book"),
        ("facebook.jsonl", "other"),
        ("wiki.jsonl", "wikipedia"),
    ],
)
def test_subset_from_filename(name: str, subset: str) -> None:
    assert subset_from_filename(name) == subset
