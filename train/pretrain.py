"""Pretrain the megatron-core GPT from a shards directory, on the CPU or one CUDA device.

``pretrain(config)`` trains, validates, checkpoints, logs, plots and exports to Hugging
Face format; ``python -m train.pretrain --config FILE [--shards DIR] [--resume]`` runs it
from the command line. Real multi-GPU runs use Megatron-LM itself (``train.launch``).

The schedule follows Megatron-LM: iteration ``k`` (from 1) reads global batch ``k`` of the
train split, updates with the learning rate of scheduler step ``k - 1`` (so 0 at the first
iteration when warming up from 0), then advances the scheduler.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from megatron.core.models.gpt import GPTModel
from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler
from torch.utils.data import Dataset

from train import checkpoint as ckpt
from train.config import ConfigError, PretrainConfig, load_config
from train.data import build_datasets, get_batch
from train.hf_export import export_hf
from train.metrics import LossLog, plot_loss_curve, read_loss_log
from train.model import build_model
from train.session import megatron_session
from train.shards import ShardsError, read_tokenizer_meta

__all__ = ["PretrainResult", "main", "pretrain", "resolve_precision"]

log = logging.getLogger(__name__)

# Settings that may change between a run and its resumption; anything else must match.
_RESUMABLE_CHANGES = {"eval_interval", "eval_iters", "save_interval", "log_interval"}


@dataclass(frozen=True)
class PretrainResult:
    """What a ``pretrain`` call did and where it left its files."""

    run_dir: Path
    loss_log: Path
    checkpoint: Path | None  # the newest checkpoint
    hf_dir: Path | None  # None when the run stopped early
    plot: Path | None  # None when matplotlib is missing
    iterations: int  # completed so far, resumed ones included
    completed: bool
    resumed_from: int | None
    device: str
    precision: str
    initial_val_loss: float | None  # at step 0; None without a valid split
    final_val_loss: float | None  # after the last iteration; None when stopped early
    final_train_loss: float | None
    test_loss: float | None
    runtime_s: float  # wall time of this call
    tokens_per_s: float  # training throughput of this call

    def summary(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            key: str(value) if isinstance(value, Path) else value
            for key, value in asdict(self).items()
        }


def resolve_precision(requested: str, device: torch.device) -> str:
    """``bf16`` on a CUDA device that supports it when asked for or ``auto``; else ``fp32``."""
    bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if requested == "bf16" and not bf16_ok:
        raise ConfigError(f"training.precision: bf16 is not supported on {device}")
    return "bf16" if requested == "bf16" or (requested == "auto" and bf16_ok) else "fp32"


def _optimizer(model: GPTModel, config: PretrainConfig) -> torch.optim.AdamW:
    # Megatron-LM's default: no weight decay on biases and 1-D parameters (the norms).
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if name.endswith(".bias") or param.ndim == 1 else decay).append(param)
    opt = config.optimizer
    return torch.optim.AdamW(
        [{"params": decay, "wd_mult": 1.0}, {"params": no_decay, "wd_mult": 0.0}],
        lr=0.0,  # set by the scheduler
        betas=(opt.adam_beta1, opt.adam_beta2),
        eps=opt.adam_eps,
        weight_decay=opt.weight_decay,
    )


def _scheduler(optimizer: torch.optim.AdamW, config: PretrainConfig) -> OptimizerParamScheduler:
    opt = config.optimizer
    return OptimizerParamScheduler(
        optimizer,
        init_lr=0.0,
        max_lr=opt.lr,
        min_lr=opt.min_lr,
        lr_warmup_steps=opt.warmup_iters,
        lr_decay_steps=config.decay_iters,
        lr_decay_style=opt.decay_style,
        start_wd=opt.weight_decay,
        end_wd=opt.weight_decay,
        wd_incr_steps=config.training.train_iters,
        wd_incr_style="constant",
        # Resuming checks the schedule against the checkpoint instead of trusting either.
        use_checkpoint_opt_param_scheduler=False,
    )


def _autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _masked_loss_sum(
    model: GPTModel, batch: dict[str, torch.Tensor], precision: str, device: torch.device
) -> torch.Tensor:
    with _autocast(precision, device):
        losses = model(
            batch["tokens"], batch["position_ids"], batch["attention_mask"], labels=batch["labels"]
        )
    return (losses.float() * batch["loss_mask"]).sum()


@torch.no_grad()
def _evaluate(
    model: GPTModel,
    dataset: Dataset[dict[str, torch.Tensor]],
    config: PretrainConfig,
    precision: str,
    device: torch.device,
) -> float:
    """Mean loss per token over the first ``eval_iters`` global batches of ``dataset``."""
    model.eval()
    samples = config.training.eval_iters * config.training.global_batch_size
    micro = config.training.micro_batch_size
    total = torch.zeros((), dtype=torch.float64, device=device)
    tokens = torch.zeros((), dtype=torch.float64, device=device)
    for start in range(0, samples, micro):
        batch = get_batch(dataset, start, min(micro, samples - start), device)
        total += _masked_loss_sum(model, batch, precision, device)
        tokens += batch["loss_mask"].sum()
    model.train()
    return (total / tokens).item()


def _train_step(
    model: GPTModel,
    optimizer: torch.optim.AdamW,
    dataset: Dataset[dict[str, torch.Tensor]],
    consumed_samples: int,
    config: PretrainConfig,
    precision: str,
    device: torch.device,
) -> tuple[float, float]:
    """One global batch in micro-batches; returns (loss per token, grad norm before clip)."""
    micro = config.training.micro_batch_size
    batches = [
        get_batch(dataset, consumed_samples + index * micro, micro, device)
        for index in range(config.micro_batches_per_step)
    ]
    # Normalised by the tokens of the whole global batch, so accumulation in micro-batches
    # gives the gradient of one big batch.
    tokens = sum(batch["loss_mask"].sum() for batch in batches)
    optimizer.zero_grad(set_to_none=True)
    loss = torch.zeros((), device=device)
    for batch in batches:
        micro_loss = _masked_loss_sum(model, batch, precision, device) / tokens
        micro_loss.backward()
        loss += micro_loss.detach()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.optimizer.clip_grad)
    optimizer.step()
    return loss.item(), grad_norm.item()


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = value
    return flat


def _check_resumable(saved: dict[str, Any], config: PretrainConfig, path: Path) -> None:
    """Refuse to resume a checkpoint under settings that would change the trajectory."""
    sections = {"seed", "model", "training", "optimizer"}
    before = _flatten({key: value for key, value in saved.items() if key in sections})
    now = _flatten(config.model_dump(mode="json", include=sections))
    differing = sorted(
        key
        for key in before.keys() | now.keys()
        if key.removeprefix("training.") not in _RESUMABLE_CHANGES
        and before.get(key) != now.get(key)
    )
    if differing:
        raise ConfigError(f"cannot resume from {path}: the config changed {', '.join(differing)}")


def pretrain(
    config: PretrainConfig, *, resume: bool = False, stop_after: int | None = None
) -> PretrainResult:
    """Train ``config`` to ``training.train_iters`` iterations and export the model.

    ``resume``: continue from the newest checkpoint in ``<run_dir>/checkpoints`` (start
    fresh when there is none); without it, a run directory that has checkpoints is refused.
    ``stop_after``: return after that iteration without the final evaluation, checkpoint
    or export, as a killed run would (its checkpoints stay).
    """
    started = time.perf_counter()
    if config.parallel.world_size != 1:
        raise ConfigError(
            "parallel: this trainer runs on one device; render a Megatron-LM launch with "
            "python -m train.launch for tensor/pipeline/data parallel runs"
        )
    training = config.training
    meta = read_tokenizer_meta(config.shards)
    run_dir = config.run_dir
    ckpt_dir = run_dir / "checkpoints"
    latest = ckpt.latest_checkpoint(ckpt_dir)
    if latest is not None and not resume:
        raise FileExistsError(f"{run_dir} already has checkpoints: resume it or pick another run")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(config.model_dump_json(indent=2) + "\n")
    with megatron_session(config.seed) as device:
        eval_samples = training.eval_iters * training.global_batch_size
        datasets = build_datasets(
            config.shards,
            seq_length=training.seq_length,
            seed=config.seed,
            num_samples={
                "train": training.train_iters * training.global_batch_size,
                "valid": eval_samples,
                "test": eval_samples,
            },
            cache_dir=run_dir / "data_cache",
        )
        precision = resolve_precision(training.precision, device)
        model = build_model(config.model, meta.vocab_size, training.seq_length, device)
        optimizer = _optimizer(model, config)
        scheduler = _scheduler(optimizer, config)
        iteration, consumed_samples, elapsed = 0, 0, 0.0
        if latest is not None:
            state = ckpt.load_checkpoint(latest)
            _check_resumable(state["config"], config, latest)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            ckpt.restore_rng_state(state["rng"])
            iteration, consumed_samples = state["iteration"], state["consumed_samples"]
            elapsed = state["elapsed"]
            log.info("resumed %s at iteration %d", run_dir, iteration)
        resumed_from = iteration if latest is not None else None
        loss_log = LossLog(run_dir / "loss_log.jsonl", resume_at=resumed_from)
        tokens_per_step = training.global_batch_size * training.seq_length
        valid = datasets.get("valid")

        def validate(step: int) -> None:
            if valid is None:
                return
            loss = _evaluate(model, valid, config, precision, device)
            row = {"split": "valid", "step": step, "loss": loss}
            loss_log.append(row | {"tokens": step * tokens_per_step, "elapsed": elapsed})
            log.info("step %d | validation loss %.4f", step, loss)

        def save(step: int) -> Path:
            return ckpt.save_checkpoint(
                ckpt_dir,
                step,
                {
                    "iteration": step,
                    "consumed_samples": consumed_samples,
                    "elapsed": elapsed,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": ckpt.rng_state(),
                    "config": config.model_dump(mode="json"),
                },
            )

        if iteration == 0:
            validate(0)
        log.info(
            "training %s on %s (%s), iterations %d..%d, %d micro-batches of %d per step",
            config.run_name,
            device,
            precision,
            iteration + 1,
            training.train_iters,
            config.micro_batches_per_step,
            training.micro_batch_size,
        )
        first_iteration, call_train_time = iteration, 0.0
        while iteration < training.train_iters:
            if stop_after is not None and iteration >= stop_after:
                break
            lr = optimizer.param_groups[0]["lr"]
            step_started = time.perf_counter()
            loss, grad_norm = _train_step(
                model, optimizer, datasets["train"], consumed_samples, config, precision, device
            )
            scheduler.step(1)
            step_time = time.perf_counter() - step_started
            iteration += 1
            consumed_samples += training.global_batch_size
            elapsed += step_time
            call_train_time += step_time
            loss_log.append(
                {
                    "split": "train",
                    "step": iteration,
                    "loss": loss,
                    "lr": lr,
                    "grad_norm": grad_norm,
                    "tokens": iteration * tokens_per_step,
                    "elapsed": elapsed,
                    "tokens_per_s": tokens_per_step / step_time,
                }
            )
            if iteration % training.log_interval == 0 or iteration == 1:
                log.info(
                    "step %d/%d | loss %.4f | lr %.3e | grad norm %.3f | %.0f tokens/s",
                    iteration,
                    training.train_iters,
                    loss,
                    lr,
                    grad_norm,
                    tokens_per_step / step_time,
                )
            if iteration % training.eval_interval == 0 or iteration == training.train_iters:
                validate(iteration)
            if iteration % training.save_interval == 0 or iteration == training.train_iters:
                save(iteration)
        completed = iteration == training.train_iters
        test_loss = None
        if completed and "test" in datasets:
            test_loss = _evaluate(model, datasets["test"], config, precision, device)
            loss_log.append({"split": "test", "step": iteration, "loss": test_loss})
            log.info("test loss %.4f", test_loss)
        hf_dir = None
        if completed:
            hf_dir = export_hf(
                model.state_dict(), config.model, meta, training.seq_length, config.hf_dir
            )
            log.info("Hugging Face export in %s", hf_dir)
    plot = plot_loss_curve(loss_log.path, run_dir / "loss_curve.png", config.run_name)
    rows = read_loss_log(loss_log.path)
    val = [row["loss"] for row in rows if row["split"] == "valid"]
    train = [row["loss"] for row in rows if row["split"] == "train"]
    trained = (iteration - first_iteration) * tokens_per_step
    return PretrainResult(
        run_dir=run_dir,
        loss_log=loss_log.path,
        checkpoint=ckpt.latest_checkpoint(ckpt_dir),
        hf_dir=hf_dir,
        plot=plot,
        iterations=iteration,
        completed=completed,
        resumed_from=resumed_from,
        device=str(device),
        precision=precision,
        initial_val_loss=val[0] if val else None,
        final_val_loss=val[-1] if val and completed else None,
        final_train_loss=train[-1] if train else None,
        test_loss=test_loss,
        runtime_s=time.perf_counter() - started,
        tokens_per_s=trained / call_train_time if call_train_time else 0.0,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m train.pretrain --config FILE [--shards DIR] [--resume]``."""
    parser = argparse.ArgumentParser(prog="python -m train.pretrain", description=__doc__)
    parser.add_argument("--config", required=True, help="YAML run configuration")
    parser.add_argument("--shards", help="shards directory (overrides the config's)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the run's newest checkpoint"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # megatron-core logs every dataset index it builds at INFO.
    logging.getLogger("megatron").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
        if args.shards:
            config = config.model_copy(update={"shards": Path(args.shards)})
        result = pretrain(config, resume=args.resume)
    except (ConfigError, ShardsError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.summary(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
