"""train.pretrain end to end on synthetic shards: learning, exact resume, HF export, CLI."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, LlamaForCausalLM

from train.checkpoint import load_checkpoint
from train.config import ConfigError, ModelConfig, PretrainConfig, parse_config
from train.hf_export import megatron_to_hf_state_dict
from train.metrics import read_loss_log
from train.model import build_model, causal_mask
from train.pretrain import main, pretrain
from train.session import megatron_session
from train.synthetic import write_synthetic_shards

VOCAB = 96
SEQ = 32
GLOBAL_BATCH = 8


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_shards(tmp_path_factory.mktemp("shards"), vocab_size=VOCAB)


def config(shards: Path, out_dir: Path, **training: Any) -> PretrainConfig:
    raw = {
        "run_name": "tiny",
        "shards": str(shards),
        "out_dir": str(out_dir),
        "seed": 1234,
        "model": {
            "num_layers": 2,
            "hidden_size": 32,
            "num_attention_heads": 4,
            "num_query_groups": 2,
            "ffn_hidden_size": 64,
        },
        "training": {
            "seq_length": SEQ,
            "micro_batch_size": 4,
            "global_batch_size": GLOBAL_BATCH,
            "train_iters": 40,
            "eval_interval": 20,
            "eval_iters": 2,
            "save_interval": 20,
            "log_interval": 10,
        }
        | training,
        "optimizer": {"lr": 3e-3, "min_lr": 3e-4, "warmup_iters": 5},
    }
    return parse_config(raw, "test")


@pytest.fixture(scope="module")
def trained(shards: Path, tmp_path_factory: pytest.TempPathFactory):
    cfg = config(shards, tmp_path_factory.mktemp("run"))
    return cfg, pretrain(cfg)


def test_training_lowers_validation_loss(trained) -> None:
    _, result = trained
    assert result.completed and result.iterations == 40
    assert (result.device, result.precision) == ("cpu", "fp32")
    assert result.initial_val_loss == pytest.approx(math.log(VOCAB), abs=0.3)
    assert result.final_val_loss < result.initial_val_loss - 1.0
    assert result.test_loss is not None and result.test_loss < result.initial_val_loss - 1.0
    assert result.tokens_per_s > 0 and result.runtime_s > 0


def test_loss_log_rows(trained) -> None:
    _, result = trained
    rows = read_loss_log(result.loss_log)
    train = [row for row in rows if row["split"] == "train"]
    valid = [row for row in rows if row["split"] == "valid"]
    assert [row["step"] for row in train] == list(range(1, 41))
    assert [row["step"] for row in valid] == [0, 20, 40]
    assert [row["split"] for row in rows][-1] == "test"
    for row in train:
        assert row.keys() >= {"loss", "lr", "grad_norm", "tokens", "elapsed", "tokens_per_s"}
        assert row["tokens"] == row["step"] * GLOBAL_BATCH * SEQ
    # Megatron-LM's order: step k uses the scheduler's lr after k - 1 steps, a linear
    # warmup from 0 over 5 steps, then a cosine reaching min_lr after the last step.
    lrs = [row["lr"] for row in train]
    assert lrs[:6] == pytest.approx([0.0, 6e-4, 1.2e-3, 1.8e-3, 2.4e-3, 3e-3])
    expected_last = 3e-4 + 0.5 * (1 + math.cos(math.pi * 34 / 35)) * (3e-3 - 3e-4)
    assert lrs[-1] == pytest.approx(expected_last)
    assert all(a >= b for a, b in itertools.pairwise(lrs[5:]))
    elapsed = [row["elapsed"] for row in train]
    assert elapsed == sorted(elapsed)


def test_run_directory_layout(trained) -> None:
    cfg, result = trained
    assert result.run_dir == cfg.run_dir and result.hf_dir == cfg.hf_dir
    checkpoints = sorted(path.name for path in (cfg.run_dir / "checkpoints").glob("iter_*.pt"))
    assert checkpoints == ["iter_0000020.pt", "iter_0000040.pt"]
    assert result.checkpoint == cfg.run_dir / "checkpoints" / "iter_0000040.pt"
    assert json.loads((cfg.run_dir / "config.json").read_text())["run_name"] == "tiny"
    if importlib.util.find_spec("matplotlib") is None:
        assert result.plot is None
    else:
        assert result.plot == cfg.run_dir / "loss_curve.png"
        assert result.plot.read_bytes().startswith(b"\x89PNG")


def test_hf_export_gives_the_same_logits(trained) -> None:
    cfg, result = trained
    state = load_checkpoint(result.checkpoint)["model"]
    tokens = torch.randint(0, VOCAB, (3, SEQ), generator=torch.Generator().manual_seed(0))
    with megatron_session(cfg.seed) as device:
        model = build_model(cfg.model, VOCAB, SEQ, device)
        model.load_state_dict(state)
        model.eval()
        with torch.no_grad():
            expected = model(tokens, torch.arange(SEQ).expand(3, SEQ), causal_mask(3, SEQ, device))
    hf = LlamaForCausalLM.from_pretrained(result.hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        actual = hf(tokens).logits
    assert actual.shape == expected.shape == (3, SEQ, VOCAB)
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)
    assert hf.config.num_key_value_heads == 2
    assert hf.config.rope_parameters["rope_theta"] == 10000.0
    assert hf.config.rms_norm_eps == 1e-5
    assert not hf.config.tie_word_embeddings
    # The export is exactly the trained weights, regrouped.
    exported = load_file(result.hf_dir / "model.safetensors")
    for name, tensor in megatron_to_hf_state_dict(state, cfg.model).items():
        assert torch.equal(exported[name], tensor), name


def test_hf_export_tokenizer(trained) -> None:
    _, result = trained
    tokenizer = AutoTokenizer.from_pretrained(result.hf_dir)
    assert tokenizer.eos_token == "<eod>"
    assert tokenizer.eos_token_id == VOCAB - 1
    assert tokenizer("t3 t7 <eod>").input_ids == [3, 7, VOCAB - 1]
    meta = json.loads((result.hf_dir / "tokenizer_meta.json").read_text())
    assert meta["eod_id"] == VOCAB - 1


def test_qkv_split_follows_query_groups() -> None:
    # 4 query heads in 2 groups of head_dim 2, hidden 8: rows tagged by their origin.
    model = ModelConfig(
        num_layers=1, hidden_size=8, num_attention_heads=4, num_query_groups=2, ffn_hidden_size=4
    )
    rows = torch.arange(16.0).repeat_interleave(8).view(16, 8)  # row i is filled with i
    state = {
        "embedding.word_embeddings.weight": torch.zeros(5, 8),
        "decoder.final_layernorm.weight": torch.ones(8),
        "output_layer.weight": torch.zeros(5, 8),
        "decoder.layers.0.input_layernorm.weight": torch.ones(8),
        "decoder.layers.0.pre_mlp_layernorm.weight": torch.ones(8),
        "decoder.layers.0.self_attention.linear_qkv.weight": rows,
        "decoder.layers.0.self_attention.linear_proj.weight": torch.zeros(8, 8),
        "decoder.layers.0.mlp.linear_fc1.weight": torch.arange(8.0).repeat_interleave(8).view(8, 8),
        "decoder.layers.0.mlp.linear_fc2.weight": torch.zeros(8, 4),
    }
    hf = megatron_to_hf_state_dict(state, model)
    first_column = {name: hf[name][:, 0].tolist() for name in hf if name.endswith("_proj.weight")}
    # Group g holds [q heads of g (2 * 2 rows), k_g (2 rows), v_g (2 rows)].
    assert first_column["model.layers.0.self_attn.q_proj.weight"] == [0, 1, 2, 3, 8, 9, 10, 11]
    assert first_column["model.layers.0.self_attn.k_proj.weight"] == [4, 5, 12, 13]
    assert first_column["model.layers.0.self_attn.v_proj.weight"] == [6, 7, 14, 15]
    assert first_column["model.layers.0.mlp.gate_proj.weight"] == [0, 1, 2, 3]
    assert first_column["model.layers.0.mlp.up_proj.weight"] == [4, 5, 6, 7]


def test_killed_and_resumed_run_matches_uninterrupted_run(
    shards: Path, trained, tmp_path: Path
) -> None:
    _, uninterrupted = trained
    cfg = config(shards, tmp_path)
    # The "kill": stop at 23 with the checkpoint of 20 written; 21-23 are lost work.
    killed = pretrain(cfg, stop_after=23)
    assert (killed.iterations, killed.completed, killed.hf_dir) == (23, False, None)
    assert killed.checkpoint == cfg.run_dir / "checkpoints" / "iter_0000020.pt"
    with pytest.raises(FileExistsError, match="already has checkpoints"):
        pretrain(cfg)
    resumed = pretrain(cfg, resume=True)
    assert resumed.resumed_from == 20 and resumed.completed
    expected_rows = read_loss_log(uninterrupted.loss_log)
    actual_rows = read_loss_log(resumed.loss_log)
    # The resumed log drops the lost steps 21-23 and logs them again, once.
    assert [(r["split"], r["step"]) for r in actual_rows] == [
        (r["split"], r["step"]) for r in expected_rows
    ]
    worst = max(abs(a["loss"] - e["loss"]) for a, e in zip(actual_rows, expected_rows, strict=True))
    assert worst <= 1e-5
    assert resumed.final_val_loss == pytest.approx(uninterrupted.final_val_loss, abs=1e-5)
    for a, e in zip(actual_rows, expected_rows, strict=True):
        if a["split"] == "train":
            assert a["lr"] == e["lr"]
    resumed_state = load_checkpoint(resumed.checkpoint)["model"]
    expected_state = load_checkpoint(uninterrupted.checkpoint)["model"]
    for name, tensor in expected_state.items():
        if isinstance(tensor, torch.Tensor):
            torch.testing.assert_close(resumed_state[name], tensor, atol=1e-5, rtol=0)


def test_resume_refuses_a_changed_trajectory(shards: Path, tmp_path: Path) -> None:
    pretrain(config(shards, tmp_path, train_iters=10, save_interval=5), stop_after=5)
    with pytest.raises(ConfigError, match=r"training\.micro_batch_size"):
        pretrain(config(shards, tmp_path, train_iters=10, micro_batch_size=2), resume=True)
    # Evaluation and saving cadence may change.
    result = pretrain(
        config(shards, tmp_path, train_iters=10, save_interval=5, eval_interval=10), resume=True
    )
    assert result.completed and result.resumed_from == 5


def test_absent_splits_are_left_out(shards: Path, tmp_path: Path) -> None:
    only_train = tmp_path / "shards"
    only_train.mkdir()
    for path in shards.iterdir():
        if path.name != "blends.json":
            (only_train / path.name).symlink_to(path)
    blends = json.loads((shards / "blends.json").read_text())
    (only_train / "blends.json").write_text(json.dumps({"train": blends["train"]}))
    result = pretrain(config(only_train, tmp_path / "out", train_iters=6, save_interval=6))
    assert result.completed
    assert (result.initial_val_loss, result.final_val_loss, result.test_loss) == (None, None, None)
    assert {row["split"] for row in read_loss_log(result.loss_log)} == {"train"}


def test_cli(shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(shards, tmp_path / "out", train_iters=6, eval_interval=3, save_interval=3)
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(cfg.model_dump(mode="json") | {"shards": "elsewhere"}))
    assert main(["--config", str(path), "--shards", str(shards)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["completed"] is True
    assert summary["hf_dir"] == str(cfg.hf_dir)
    assert summary["final_val_loss"] < summary["initial_val_loss"]
    assert main(["--config", str(path), "--shards", str(shards)]) == 2
    assert "already has checkpoints" in capsys.readouterr().err
    # Resuming a finished run only evaluates and exports again.
    assert main(["--config", str(path), "--shards", str(shards), "--resume"]) == 0
    splits = [row["split"] for row in read_loss_log(cfg.run_dir / "loss_log.jsonl")]
    assert splits.count("test") == 1 and splits.count("train") == 6
