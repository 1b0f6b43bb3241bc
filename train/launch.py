"""Render the Megatron-LM ``torchrun ... pretrain_gpt.py ...`` command of a real GPU run.

The same YAML as the CPU trainer (``train.config``) plus its ``parallel`` and ``launch``
sections; data paths come from the shards' ``blends.json`` (``weight prefix`` pairs per
split), the tokenizer from their ``tokenizer_meta.json``. Nodes are
``tensor * pipeline * data / gpus_per_node``; each node runs the same script with its own
``NODE_RANK`` and the rank-0 node's address in ``MASTER_ADDR``.

``python -m train.launch --config FILE [--shards DIR]`` prints the script.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from train.config import ConfigError, PretrainConfig, load_config
from train.shards import SPLITS, ShardsError, TokenizerMeta, read_blends, read_tokenizer_meta

__all__ = ["main", "megatron_args", "num_nodes", "render_script", "torchrun_command"]

# Per-node values supplied by the cluster's launcher, left to the shell to expand.
NODE_RANK = "$NODE_RANK"
MASTER_ADDR = "$MASTER_ADDR"
_SHELL_VAR = re.compile(r"^\$[A-Z_][A-Z0-9_]*$")


def num_nodes(config: PretrainConfig) -> int:
    """Nodes of ``gpus_per_node`` GPUs that the parallel layout fills exactly."""
    parallel = config.parallel
    nodes, rest = divmod(parallel.world_size, parallel.gpus_per_node)
    if rest or not nodes:
        raise ConfigError(
            f"parallel: tensor * pipeline * data = {parallel.world_size} GPUs does not fill "
            f"whole nodes of {parallel.gpus_per_node}"
        )
    return nodes


def _tokenizer_args(meta: TokenizerMeta) -> list[str]:
    if meta.kind == "sentencepiece":
        if meta.sentencepiece_model is None:
            raise ShardsError(f"{meta.directory}: a sentencepiece tokenizer needs tokenizer.model")
        return [
            "--tokenizer-type",
            "SentencePieceTokenizer",
            "--tokenizer-model",
            str(meta.sentencepiece_model),
        ]
    if meta.tokenizer_json is None:
        raise ShardsError(f"{meta.directory}: a {meta.kind} tokenizer needs tokenizer.json")
    return ["--tokenizer-type", "HuggingFaceTokenizer", "--tokenizer-model", str(meta.directory)]


def megatron_args(config: PretrainConfig, shards: Path | None = None) -> list[str]:
    """The arguments of ``pretrain_gpt.py``; ``shards`` overrides the config's directory."""
    shards = shards or config.shards
    blends = read_blends(shards)
    meta = read_tokenizer_meta(shards)
    model, training, opt, parallel = (
        config.model,
        config.training,
        config.optimizer,
        config.parallel,
    )
    run_dir = config.run_dir
    args = [
        "--tensor-model-parallel-size", str(parallel.tensor),
        "--pipeline-model-parallel-size", str(parallel.pipeline),
        "--num-layers", str(model.num_layers),
        "--hidden-size", str(model.hidden_size),
        "--ffn-hidden-size", str(model.ffn_hidden_size),
        "--num-attention-heads", str(model.num_attention_heads),
    ]  # fmt: skip
    if model.query_groups != model.num_attention_heads:
        args += ["--group-query-attention", "--num-query-groups", str(model.query_groups)]
    args += [
        "--seq-length", str(training.seq_length),
        "--max-position-embeddings", str(training.seq_length),
        "--position-embedding-type", "rope",
        "--rotary-base", str(int(model.rotary_base)),
        "--normalization", "RMSNorm",
        "--norm-epsilon", repr(model.norm_epsilon),
        "--swiglu",
        "--disable-bias-linear",
        "--untie-embeddings-and-output-weights",
        "--attention-dropout", "0.0",
        "--hidden-dropout", "0.0",
        "--init-method-std", repr(model.init_method_std),
        "--micro-batch-size", str(training.micro_batch_size),
        "--global-batch-size", str(training.global_batch_size),
        "--train-iters", str(training.train_iters),
        "--lr", repr(opt.lr),
        "--min-lr", repr(opt.min_lr),
        "--lr-decay-style", opt.decay_style,
        "--lr-warmup-iters", str(opt.warmup_iters),
        "--lr-decay-iters", str(config.decay_iters),
        "--weight-decay", repr(opt.weight_decay),
        "--adam-beta1", repr(opt.adam_beta1),
        "--adam-beta2", repr(opt.adam_beta2),
        "--adam-eps", repr(opt.adam_eps),
        "--clip-grad", repr(opt.clip_grad),
    ]  # fmt: skip
    # Megatron-LM trains in fp32 unless told; the real runs are bf16 as MediTron's were.
    if training.precision in ("auto", "bf16"):
        args.append("--bf16")
    if parallel.sequence_parallel:
        args.append("--sequence-parallel")
    if parallel.distributed_optimizer:
        args.append("--use-distributed-optimizer")
    for split in SPLITS:
        if split in blends:
            args.append(f"--{split}-data-path")
            for weight, prefix in blends[split]:
                args += [repr(weight), prefix]
    args += _tokenizer_args(meta)
    args += [
        "--seed", str(config.seed),
        "--data-cache-path", str(run_dir / "data_cache"),
        "--save", str(run_dir / "megatron"),
        "--load", str(run_dir / "megatron"),
        "--save-interval", str(training.save_interval),
        "--eval-interval", str(training.eval_interval),
        "--eval-iters", str(training.eval_iters),
        "--log-interval", str(training.log_interval),
        "--tensorboard-dir", str(run_dir / "tensorboard"),
    ]  # fmt: skip
    if config.launch.pretrained_checkpoint:
        args += ["--pretrained-checkpoint", config.launch.pretrained_checkpoint]
    return args


def torchrun_command(config: PretrainConfig, shards: Path | None = None) -> list[str]:
    """The whole command line, ``torchrun`` first; per-node values are shell variables."""
    return [
        "torchrun",
        "--nnodes", str(num_nodes(config)),
        "--nproc-per-node", str(config.parallel.gpus_per_node),
        "--node-rank", NODE_RANK,
        "--master-addr", MASTER_ADDR,
        "--master-port", str(config.launch.master_port),
        str(Path(config.launch.megatron_lm_dir) / "pretrain_gpt.py"),
        *megatron_args(config, shards),
    ]  # fmt: skip


def _shell_word(word: str) -> str:
    return f'"{word[0]}{{{word[1:]}}}"' if _SHELL_VAR.match(word) else shlex.quote(word)


def _option_lines(words: Sequence[str]) -> list[str]:
    # One option and its values per line, so the script reads like Megatron-LM's examples.
    lines: list[list[str]] = []
    for word in words:
        if word.startswith("--") or not lines:
            lines.append([])
        lines[-1].append(word)
    return [" ".join(line) for line in lines]


def render_script(config: PretrainConfig, shards: Path | None = None) -> str:
    """A bash script that runs this node's part of the job."""
    argv = torchrun_command(config, shards)
    script_at = argv.index(str(Path(config.launch.megatron_lm_dir) / "pretrain_gpt.py"))
    words = [_shell_word(word) for word in argv]
    lines = _option_lines(words[:script_at]) + _option_lines(words[script_at:])
    body = " \\\n    ".join(lines)
    return (
        "#!/usr/bin/env bash\n"
        f"# Megatron-LM pretraining of {config.run_name}: {num_nodes(config)} nodes of "
        f"{config.parallel.gpus_per_node} GPUs, rendered by python -m train.launch.\n"
        "set -euo pipefail\n"
        ': "${NODE_RANK:?set NODE_RANK to this node\'s rank, 0 on the master}"\n'
        ': "${MASTER_ADDR:?set MASTER_ADDR to the rank-0 node\'s address}"\n'
        f"exec {body}\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m train.launch --config FILE [--shards DIR]``: print the launch script."""
    parser = argparse.ArgumentParser(prog="python -m train.launch", description=__doc__)
    parser.add_argument("--config", required=True, help="YAML run configuration")
    parser.add_argument("--shards", help="shards directory (overrides the config's)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        script = render_script(config, Path(args.shards) if args.shards else None)
    except (ConfigError, ShardsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(script)
    return 0


if __name__ == "__main__":
    sys.exit(main())
