"""train.config: the shipped configs validate, and errors name the offending key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from train.config import ConfigError, PretrainConfig, load_config, parse_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def tiny() -> dict:
    return yaml.safe_load((CONFIGS / "pretrain_tiny.yaml").read_text())


def test_tiny_config_loads_with_fixed_export_path() -> None:
    config = load_config(CONFIGS / "pretrain_tiny.yaml")
    assert config.run_dir == Path("checkpoints/tiny")
    assert config.hf_dir == Path("checkpoints/tiny/hf")
    assert config.micro_batches_per_step == 2
    assert config.model.query_groups == 2
    assert config.decay_iters == config.training.train_iters
    assert config.parallel.world_size == 1


@pytest.mark.parametrize(
    ("name", "layers", "heads", "groups", "seq", "lr", "micro_steps"),
    [
        ("pretrain_meditron_7b.yaml", 32, 32, 32, 2048, 3e-4, 10),
        ("pretrain_meditron_70b.yaml", 80, 64, 8, 4096, 1.5e-4, 128),
    ],
)
def test_meditron_configs(
    name: str, layers: int, heads: int, groups: int, seq: int, lr: float, micro_steps: int
) -> None:
    config = load_config(CONFIGS / name)
    assert config.model.num_layers == layers
    assert config.model.num_attention_heads == heads
    assert config.model.query_groups == groups
    assert config.training.seq_length == seq
    assert config.optimizer.lr == lr
    assert config.optimizer.warmup_iters == 2000
    assert config.optimizer.decay_style == "cosine"
    assert (config.optimizer.adam_beta1, config.optimizer.adam_beta2) == (0.9, 0.95)
    assert config.optimizer.adam_eps == 1e-5
    assert config.optimizer.weight_decay == 0.1
    assert config.optimizer.clip_grad == 1.0
    assert config.training.precision == "bf16"
    assert config.micro_batches_per_step == micro_steps


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, "cfg.yaml")
    return str(info.value)


def test_unknown_keys_are_named() -> None:
    raw = tiny()
    raw["trainig"] = {}
    assert "cfg.yaml: trainig: Extra inputs are not permitted" in _error(raw)
    raw = tiny()
    raw["model"]["hiden_size"] = 64
    assert "cfg.yaml: model.hiden_size: Extra inputs are not permitted" in _error(raw)


def test_bad_and_missing_values_are_named() -> None:
    raw = tiny()
    raw["training"]["seq_length"] = 0
    assert "training.seq_length: Input should be greater than 0" in _error(raw)
    raw = tiny()
    del raw["optimizer"]["lr"]
    assert "optimizer.lr: Field required" in _error(raw)
    raw = tiny()
    raw["training"]["precision"] = "fp8"
    assert "training.precision" in _error(raw)
    raw = tiny()
    raw["run_name"] = "../escape"
    assert "run_name" in _error(raw)


def test_cross_field_checks_name_their_keys() -> None:
    raw = tiny()
    raw["model"]["num_query_groups"] = 3
    assert "model: Value error, num_attention_heads must be a multiple of num_query_groups" in (
        _error(raw)
    )
    raw = tiny()
    raw["training"]["global_batch_size"] = 6
    assert "training.global_batch_size must be a multiple" in _error(raw)
    raw = tiny()
    raw["optimizer"]["min_lr"] = 1.0
    assert "optimizer: Value error, min_lr must not exceed lr" in _error(raw)
    raw = tiny()
    raw["optimizer"]["warmup_iters"] = raw["training"]["train_iters"]
    assert "optimizer.warmup_iters" in _error(raw)


def test_load_config_reports_file_problems(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: expected a mapping"):
        load_config(path)
    path.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_config(path)
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        load_config(tmp_path / "missing.yaml")


def test_config_is_frozen() -> None:
    config = PretrainConfig.model_validate(tiny())
    with pytest.raises(ValueError, match="frozen"):
        config.seed = 1  # type: ignore[misc]
