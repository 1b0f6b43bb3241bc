"""A short bf16 run of the training layer on one CUDA GPU, printing tokens/s as JSON.

    python -m train.gpu_check [--iters 30] [--layers 12] [--hidden 1024] [--keep DIR]

Run from the repository root on a CUDA machine. It needs torch with CUDA, megatron-core
0.16.1 (``pip install`` its wheel where the machine lacks it), transformers, tokenizers,
safetensors, pydantic and PyYAML. It writes its own synthetic shards (MediTron's vocabulary
size, 32,017) and trains through ``train.pretrain.pretrain`` exactly as on the CPU, but
with megatron-core untouched (``cpu_compat`` applies nothing when CUDA is available) and
bf16 autocast. Without CUDA, or with a dependency missing, it prints
``{"ok": false, "error": ...}`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

__all__ = ["main"]

REQUIRED = ("megatron.core", "transformers", "tokenizers", "safetensors", "pydantic", "yaml")
VOCAB_SIZE = 32_017  # MediTron's tokenizer (MEDITRON.md)
WARMUP_STEPS = 5  # first steps carry allocator and kernel-selection costs


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a missing parent package
        return False


def _fail(message: str) -> int:
    print(json.dumps({"ok": False, "error": message}))
    return 2


def _parameters(vocab: int, layers: int, hidden: int, heads: int, groups: int, ffn: int) -> int:
    kv = 2 * groups * (hidden // heads)
    per_layer = hidden * (hidden + kv) + hidden * hidden + 3 * hidden * ffn + 2 * hidden
    return 2 * vocab * hidden + layers * per_layer + hidden


def _run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    # Imported only once CUDA and the dependencies are known to be there.
    from train import cpu_compat
    from train.config import parse_config
    from train.metrics import read_loss_log
    from train.pretrain import pretrain
    from train.synthetic import write_synthetic_shards

    shards = write_synthetic_shards(
        work / "shards", vocab_size=VOCAB_SIZE, docs_per_shard=64, doc_length=(256, 4096)
    )
    model = {
        "num_layers": args.layers,
        "hidden_size": args.hidden,
        "num_attention_heads": args.heads,
        "num_query_groups": args.groups,
        "ffn_hidden_size": args.ffn,
    }
    config = parse_config(
        {
            "run_name": "gpu-check",
            "shards": str(shards),
            "out_dir": str(work / "checkpoints"),
            "model": model,
            "training": {
                "seq_length": args.seq_length,
                "micro_batch_size": args.micro_batch,
                "global_batch_size": args.global_batch,
                "train_iters": args.iters,
                "eval_interval": args.iters,
                "save_interval": args.iters,
                "log_interval": 5,
                "precision": "bf16",
            },
            "optimizer": {"lr": 3e-4, "min_lr": 3e-5, "warmup_iters": 2},
        },
        "gpu_check",
    )
    torch.cuda.reset_peak_memory_stats()
    result = pretrain(config)
    steps = [row for row in read_loss_log(result.loss_log) if row["split"] == "train"]
    steady = [row["tokens_per_s"] for row in steps[WARMUP_STEPS:]] or [
        row["tokens_per_s"] for row in steps
    ]
    return {
        "ok": True,
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "precision": result.precision,
        "cpu_adaptations_in_place": cpu_compat.applied(),
        "parameters": _parameters(VOCAB_SIZE, **_model_sizes(args)),
        "model": model,
        "seq_length": args.seq_length,
        "micro_batch": args.micro_batch,
        "global_batch": args.global_batch,
        "iterations": result.iterations,
        "tokens_per_s": statistics.median(steady),
        "tokens_per_s_mean_steady": statistics.fmean(steady),
        "steady_steps": len(steady),
        "initial_val_loss": result.initial_val_loss,
        "final_val_loss": result.final_val_loss,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        "runtime_s": result.runtime_s,
        "hf_export": str(result.hf_dir),
    }


def _model_sizes(args: argparse.Namespace) -> dict[str, int]:
    return {
        "layers": args.layers,
        "hidden": args.hidden,
        "heads": args.heads,
        "groups": args.groups,
        "ffn": args.ffn,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Check CUDA and the dependencies, run, print one JSON object."""
    parser = argparse.ArgumentParser(prog="python -m train.gpu_check", description=__doc__)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=2816)
    parser.add_argument("--seq-length", type=int, default=1024)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--global-batch", type=int, default=32)
    parser.add_argument("--keep", help="keep shards, checkpoints and export in this directory")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        return _fail("CUDA is not available: run this on a machine with a CUDA GPU")
    missing = [name for name in REQUIRED if not _installed(name)]
    if missing:
        return _fail(f"missing Python packages: {', '.join(missing)}")
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True, exist_ok=True)
        report = _run(args, work)
    else:
        with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
            report = _run(args, Path(tmp))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
