"""train.launch: the Megatron-LM torchrun command rendered from a config and the shards."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from train.config import ConfigError, PretrainConfig, load_config
from train.launch import main, megatron_args, num_nodes, render_script, torchrun_command
from train.shards import ShardsError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def fake_shards(root: Path, *, kind: str = "bpe", valid: bool = True) -> Path:
    """A shards directory as the corpus pipeline lays it out; launch reads no token."""
    root.mkdir(parents=True)
    for name in ("papers", "replay", "valid", "test"):
        (root / f"{name}.bin").write_bytes(b"\x01\x00")
        (root / f"{name}.idx").write_bytes(b"MMIDIDX\x00\x00")
    blends = {
        "train": [{"weight": 0.9, "prefix": "papers"}, {"weight": 0.1, "prefix": "replay"}],
        "test": [{"weight": 1.0, "prefix": str(root / "test")}],
    }
    if valid:
        blends["valid"] = [{"weight": 1.0, "prefix": "valid"}]
    (root / "blends.json").write_text(json.dumps(blends))
    tokenizer = root / "tokenizer"
    tokenizer.mkdir()
    meta = {"kind": kind, "name": "t", "vocab_size": 32017, "eod_id": 32002}
    (tokenizer / "tokenizer_meta.json").write_text(json.dumps(meta))
    (tokenizer / ("tokenizer.model" if kind == "sentencepiece" else "tokenizer.json")).write_text(
        "{}"
    )
    return root


def options(argv: list[str]) -> dict[str, list[str]]:
    """``--option value value ...`` groups of an argument list."""
    grouped: dict[str, list[str]] = {}
    current = None
    for word in argv:
        if word.startswith("--"):
            current = word
            assert current not in grouped, f"{current} given twice"
            grouped[current] = []
        else:
            assert current is not None
            grouped[current].append(word)
    return grouped


def test_meditron_7b_command(tmp_path: Path) -> None:
    shards = fake_shards(tmp_path / "shards")
    config = load_config(CONFIGS / "pretrain_meditron_7b.yaml")
    argv = torchrun_command(config, shards)
    assert argv[0] == "torchrun"
    script_at = argv.index("Megatron-LM/pretrain_gpt.py")
    launcher, args = options(argv[1:script_at]), options(argv[script_at + 1 :])
    assert launcher == {
        "--nnodes": ["8"],  # 4 * 1 * 16 GPUs / 8 per node
        "--nproc-per-node": ["8"],
        "--node-rank": ["$NODE_RANK"],
        "--master-addr": ["$MASTER_ADDR"],
        "--master-port": ["6000"],
    }
    expected = {
        "--tensor-model-parallel-size": ["4"],
        "--pipeline-model-parallel-size": ["1"],
        "--num-layers": ["32"],
        "--hidden-size": ["4096"],
        "--ffn-hidden-size": ["11008"],
        "--num-attention-heads": ["32"],
        "--seq-length": ["2048"],
        "--max-position-embeddings": ["2048"],
        "--position-embedding-type": ["rope"],
        "--rotary-base": ["10000"],
        "--normalization": ["RMSNorm"],
        "--norm-epsilon": ["1e-05"],
        "--swiglu": [],
        "--disable-bias-linear": [],
        "--untie-embeddings-and-output-weights": [],
        "--micro-batch-size": ["10"],
        "--global-batch-size": ["1600"],
        "--lr": ["0.0003"],
        "--min-lr": ["3e-05"],
        "--lr-decay-style": ["cosine"],
        "--lr-warmup-iters": ["2000"],
        "--weight-decay": ["0.1"],
        "--adam-beta1": ["0.9"],
        "--adam-beta2": ["0.95"],
        "--adam-eps": ["1e-05"],
        "--clip-grad": ["1.0"],
        "--bf16": [],
        "--sequence-parallel": [],
        "--seed": ["1234"],
        "--tokenizer-type": ["HuggingFaceTokenizer"],
        "--tokenizer-model": [str(shards / "tokenizer")],
        "--save": ["checkpoints/meditron-7b/megatron"],
        "--load": ["checkpoints/meditron-7b/megatron"],
        "--pretrained-checkpoint": ["checkpoints/llama-2-7b-megatron"],
        "--train-data-path": ["0.9", str(shards / "papers"), "0.1", str(shards / "replay")],
        "--valid-data-path": ["1.0", str(shards / "valid")],
        "--test-data-path": ["1.0", str(shards / "test")],
    }
    for option, values in expected.items():
        assert args[option] == values, option
    assert args["--train-iters"] == args["--lr-decay-iters"] == ["14252"]
    # MediTron: packed documents, no attention or position reset, EOD kept in the loss.
    for absent in ("--group-query-attention", "--reset-position-ids", "--eod-mask-loss"):
        assert absent not in args
    assert "--reset-attention-mask" not in args


def test_meditron_70b_command(tmp_path: Path) -> None:
    shards = fake_shards(tmp_path / "shards", kind="sentencepiece", valid=False)
    config = load_config(CONFIGS / "pretrain_meditron_70b.yaml")
    assert num_nodes(config) == 16  # 8 * 8 * 2 = 128 GPUs, MediTron-70B's 128 A100s
    args = options(megatron_args(config, shards))
    assert args["--tensor-model-parallel-size"] == ["8"]
    assert args["--pipeline-model-parallel-size"] == ["8"]
    assert args["--group-query-attention"] == []
    assert args["--num-query-groups"] == ["8"]
    assert args["--ffn-hidden-size"] == ["28672"]
    assert args["--seq-length"] == ["4096"]
    assert args["--micro-batch-size"] == ["2"]
    assert args["--global-batch-size"] == ["512"]
    assert args["--lr"] == ["0.00015"]
    assert args["--tokenizer-type"] == ["SentencePieceTokenizer"]
    assert args["--tokenizer-model"] == [str(shards / "tokenizer" / "tokenizer.model")]
    assert "--valid-data-path" not in args  # an absent split is never passed


def test_rendered_script_runs_torchrun_with_the_same_arguments(tmp_path: Path) -> None:
    # Shell metacharacters exercise the quoting (blend prefixes cannot hold whitespace:
    # Megatron-LM's blend text separates its words by spaces).
    shards = fake_shards(tmp_path / "shards$HOME'x")
    config = load_config(CONFIGS / "pretrain_meditron_7b.yaml")
    script = tmp_path / "launch.sh"
    script.write_text(render_script(config, shards))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_torchrun = bin_dir / "torchrun"
    fake_torchrun.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake_torchrun.chmod(0o755)
    env = os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    missing = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert missing.returncode != 0
    assert "NODE_RANK" in missing.stderr
    env |= {"NODE_RANK": "3", "MASTER_ADDR": "10.0.0.1"}
    ran = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    expected = torchrun_command(config, shards)[1:]
    expected[expected.index("$NODE_RANK")] = "3"
    expected[expected.index("$MASTER_ADDR")] = "10.0.0.1"
    assert ran.stdout.splitlines() == expected


def test_layout_must_fill_whole_nodes(tmp_path: Path) -> None:
    raw = load_config(CONFIGS / "pretrain_meditron_7b.yaml").model_dump()
    raw["parallel"]["data"] = 3  # 12 GPUs
    raw["training"]["global_batch_size"] = 1620
    config = PretrainConfig.model_validate(raw)
    with pytest.raises(ConfigError, match="does not fill whole nodes of 8"):
        torchrun_command(config, fake_shards(tmp_path / "shards"))


def test_main_prints_the_script_or_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = fake_shards(tmp_path / "shards")
    config = str(CONFIGS / "pretrain_meditron_70b.yaml")
    assert main(["--config", config, "--shards", str(shards)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("#!/usr/bin/env bash\n")
    assert "16 nodes of 8 GPUs" in out
    assert main(["--config", config, "--shards", str(tmp_path / "nowhere")]) == 2
    assert "blends.json" in capsys.readouterr().err


def test_missing_tokenizer_file_is_an_error(tmp_path: Path) -> None:
    shards = fake_shards(tmp_path / "shards")
    (shards / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(ShardsError, match=r"needs tokenizer\.json"):
        megatron_args(load_config(CONFIGS / "pretrain_meditron_7b.yaml"), shards)
