"""Cost of the real 48B-token GAP-Replay build on a cluster, from bench/results/scale.json.

Per stage, the throughput of the largest whole-pipeline run that completed it, in tokens
per second per core (Llama-2 tokens, MediTron's tokenizer): the stage's documents times the
tokens per document of their source (measured here by tokenizing a seeded sample of the
same generated documents), over seconds times the run's cores. Tokens, not documents,
because the real sources differ in size (a PMC paper has ~8,300 tokens, an abstract ~350)
and every stage's work grows with the text. The real build's tokens per stage come from
MediTron's table (shared/MEDITRON.md): the ingests read their source's tokens, every later
stage all 48.1B. Core-hours = tokens / throughput / 3600; wall hours on C cores assume the
stage spreads over them (Spark tasks per file or partition: 1,274 PubMed files, PMC
packages by the thousand, so yes for the ingests; dedup's shuffle is the least certain).
Storage: the bronze, silver and gold Delta folders and the shard .bin files of the run,
per token, times 48.1B.

The machine is shared: per-core figures are lower bounds, the hours upper bounds (scale.json's
notes say the load each measurement ran under).

    python -m bench.cost_model   # writes bench/results/cost_model.json, prints the table
"""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

from bench.common import RESULTS, write_result
from bench.large_inputs import DEFAULT_MIX, FIXTURES, documents
from spark_jobs.pipeline import STAGES

# shared/MEDITRON.md: documents and tokens of GAP-Replay's four parts (train).
REAL = {
    "pmc": {"docs": 4.9e6, "tokens": 40.7e9},  # papers
    "pubmed": {"docs": 15.7e6, "tokens": 5.48e9},  # abstracts
    "guidelines": {"docs": 41e3, "tokens": 107e6},
    "replay": {"docs": 494e3, "tokens": 420e6},
}
REAL_TOTAL_TOKENS = 48.1e9  # train 46.7B + validation 1.4B
CLUSTERS = (64, 256)
SAMPLE = 300  # generated documents per source tokenized for tokens per document
INGESTS = {"ingest_pubmed": "pubmed", "ingest_pmc": "pmc", "ingest_replay": "replay"}


def tokens_per_doc() -> dict[str, float]:
    """Mean Llama-2 tokens of the generated documents of each source (seed 0, no copies)."""
    from corpus.tokenizer import TokenizerConfig, build_tokenizer

    tokenizer = build_tokenizer(
        TokenizerConfig(
            kind="sentencepiece",
            path=str(FIXTURES / "tokenizers" / "llama2" / "tokenizer.model"),
            markers=True,
        )
    )
    out = {}
    for source in DEFAULT_MIX:
        texts = [t for _, t in islice(documents(source, SAMPLE, 0, 0.0, 0.0), SAMPLE)]
        out[source] = round(sum(map(len, tokenizer.encode_batch(texts))) / len(texts), 1)
    return out


def model(scale: dict[str, Any], per_doc: dict[str, float]) -> dict[str, Any]:
    cores = scale["host"]["cpus"]
    runs = scale["pipeline"]
    throughput: dict[str, Any] = {}
    for n in sorted(runs, key=int):  # the largest run that finished a stage wins
        run = runs[n]
        mean = sum(per_doc[s] * v["docs"] for s, v in run["inputs"].items()) / sum(
            v["docs"] for v in run["inputs"].values()
        )
        for stage, figures in run["stages"].items():
            if figures["status"] != "succeeded" or not figures["seconds"]:
                continue
            docs = figures["rows_in"] or 0
            tokens = docs * per_doc.get(INGESTS.get(stage, ""), mean)
            throughput[stage] = {
                "from_run": int(n),
                "docs": docs,
                "seconds": figures["seconds"],
                "docs_per_s_per_core": round(docs / figures["seconds"] / cores, 1),
                "tokens_per_s_per_core": round(tokens / figures["seconds"] / cores),
            }
    order = [stage.name for stage in STAGES]
    throughput = dict(sorted(throughput.items(), key=lambda kv: order.index(kv[0])))
    stages: dict[str, Any] = {}
    for stage, t in throughput.items():
        real_tokens = REAL[INGESTS[stage]]["tokens"] if stage in INGESTS else REAL_TOTAL_TOKENS
        core_hours = real_tokens / t["tokens_per_s_per_core"] / 3600
        stages[stage] = {
            "tokens": real_tokens,
            "core_hours": round(core_hours),
            **{f"wall_hours_{c}_cores": round(core_hours / c, 1) for c in CLUSTERS},
        }
    total = sum(s["core_hours"] for s in stages.values())
    largest = max(runs, key=lambda n: (runs[n]["tokens"] > 0, int(n)))
    run = runs[largest]
    storage = {}
    if run["tokens"]:
        for layer, size in run["layer_bytes"].items():
            storage[layer] = {
                "bytes_per_token": round(size / run["tokens"], 2),
                "tb_for_real_build": round(size / run["tokens"] * REAL_TOTAL_TOKENS / 1e12, 2),
            }
        storage["shards_bin"] = {
            "bytes_per_token": round(run["shard_bin_bytes"] / run["tokens"], 2),
            "tb_for_real_build": round(
                run["shard_bin_bytes"] / run["tokens"] * REAL_TOTAL_TOKENS / 1e12, 2
            ),
        }
    alone = _alone(scale.get("alone", {}))
    return {
        "measured_on": {"cores": cores, "note": scale["host"].get("note")},
        "tokens_per_doc_generated": per_doc,
        "real_build": {"sources": REAL, "tokens": REAL_TOTAL_TOKENS},
        "throughput": throughput,
        "stages": stages,
        "total": {
            "core_hours": total,
            **{f"wall_hours_{c}_cores": round(total / c, 1) for c in CLUSTERS},
        },
        "storage": {"from_run": int(largest), "layers": storage},
        "alone_throughput": alone,
        "not_modelled": [
            "ingest_guidelines (PDF/HTML, 107M tokens: bench/results/guidelines.json has its"
            " pages per second)",
            "downloads and object-store transfers",
        ],
    }


def _alone(runs: dict[str, Any]) -> dict[str, Any]:
    """Core-hours of the real build from the largest alone run of each task: the PubMed
    parser over the abstracts, the shard writer over every token, dedup over every
    document (per document: its work is mostly per-document shuffles)."""
    real_docs = sum(v["docs"] for v in REAL.values())
    work = {
        "parse": ("docs_per_s_per_core", REAL["pubmed"]["docs"]),
        "tokenize": ("tokens_per_s_per_core", REAL_TOTAL_TOKENS),
        "dedup": ("docs_per_s_per_core", real_docs),
    }
    out = {}
    for task, sizes in runs.items():
        if not sizes:
            continue
        n = max(sizes, key=int)
        unit, amount = work[task]
        core_hours = amount / sizes[n][unit] / 3600
        out[task] = {
            "from_run": int(n),
            unit: sizes[n][unit],
            "real_amount": amount,
            "core_hours": round(core_hours, 1),
            **{f"wall_hours_{c}_cores": round(core_hours / c, 2) for c in CLUSTERS},
        }
    return out


def markdown(cost: dict[str, Any]) -> str:
    c1, c2 = CLUSTERS
    lines = [
        f"| stage | measured tokens/s/core | real tokens | core-hours | h on {c1} cores"
        f" | h on {c2} cores |",
        "|---|---|---|---|---|---|",
    ]
    for stage, s in cost["stages"].items():
        t = cost["throughput"][stage]
        lines.append(
            f"| {stage} | {t['tokens_per_s_per_core']:,} | {s['tokens'] / 1e9:.2f}B"
            f" | {s['core_hours']:,} | {s[f'wall_hours_{c1}_cores']}"
            f" | {s[f'wall_hours_{c2}_cores']} |"
        )
    total = cost["total"]
    lines.append(
        f"| **all** | | | **{total['core_hours']:,}** | **{total[f'wall_hours_{c1}_cores']}**"
        f" | **{total[f'wall_hours_{c2}_cores']}** |"
    )
    return "\n".join(lines)


def main() -> None:
    scale = json.loads((RESULTS / "scale.json").read_text())
    cost = model(scale, tokens_per_doc())
    write_result("cost_model", cost)
    print(markdown(cost))
    print(json.dumps(cost["storage"], indent=2))


if __name__ == "__main__":
    main()
