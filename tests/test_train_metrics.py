"""train.metrics: the JSONL loss log and the loss-curve plot."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

from train.metrics import LossLog, plot_loss_curve, read_loss_log


def rows(steps: range) -> list[dict]:
    return [{"split": "train", "step": step, "loss": 5.0 - step / 10} for step in steps]


def test_new_log_replaces_an_old_one(tmp_path: Path) -> None:
    path = tmp_path / "run" / "loss_log.jsonl"
    log = LossLog(path, resume_at=None)
    for row in rows(range(1, 4)):
        log.append(row)
    assert read_loss_log(path) == rows(range(1, 4))
    LossLog(path, resume_at=None)
    assert read_loss_log(path) == []


def test_resume_keeps_rows_up_to_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "loss_log.jsonl"
    log = LossLog(path, resume_at=None)
    for row in [
        *rows(range(1, 6)),
        {"split": "valid", "step": 5, "loss": 4.0},
        {"split": "test", "step": 5, "loss": 4.1},  # a finished run's last row
        *rows(range(6, 9)),
    ]:
        log.append(row)
    resumed = LossLog(path, resume_at=5)
    assert [(row["split"], row["step"]) for row in read_loss_log(path)] == [
        *(("train", step) for step in range(1, 6)),
        ("valid", 5),
    ]
    resumed.append(rows(range(6, 7))[0])
    assert read_loss_log(path)[-1]["step"] == 6


def test_plot_needs_matplotlib(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "loss_log.jsonl"
    log = LossLog(path, resume_at=None)
    for row in [*rows(range(1, 4)), {"split": "valid", "step": 3, "loss": 4.9}]:
        log.append(row)
    png = tmp_path / "loss_curve.png"
    with caplog.at_level(logging.WARNING, logger="train.metrics"):
        plotted = plot_loss_curve(path, png, "tiny")
    if importlib.util.find_spec("matplotlib") is None:
        assert plotted is None and not png.exists()
        assert "matplotlib is not installed" in caplog.text
    else:
        assert plotted == png
        assert png.read_bytes().startswith(b"\x89PNG")
