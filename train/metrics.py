"""The loss log (JSON Lines) and the loss-curve plot.

One row per training step, ``{"split": "train", "step", "loss", "lr", "grad_norm",
"tokens", "elapsed", "tokens_per_s"}``, and one per validation,
``{"split": "valid", "step", "loss", "tokens", "elapsed"}``; ``tokens`` counts training
tokens so far and ``elapsed`` seconds of training so far (resumed runs continue both).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["LossLog", "plot_loss_curve", "read_loss_log"]

log = logging.getLogger(__name__)


def read_loss_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All rows of a loss log, in order."""
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


class LossLog:
    """Appends rows to ``path``, flushed per row so a killed run keeps what it logged."""

    def __init__(self, path: Path, *, resume_at: int | None) -> None:
        """Start a new log, or with ``resume_at`` keep the rows up to that step.

        Rows after ``resume_at`` come from steps a killed run did after its last
        checkpoint, and test rows from the end of a finished run; the resumed run logs
        them again.
        """
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resume_at is not None and path.is_file():
            kept = [
                row
                for row in read_loss_log(path)
                if row["step"] <= resume_at and row["split"] != "test"
            ]
        self._write_all(kept)

    def _write_all(self, rows: Iterable[dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        os.replace(tmp, self.path)

    def append(self, row: dict[str, Any]) -> None:
        """Add one row."""
        with open(self.path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(row) + "\n")


def plot_loss_curve(
    log_path: str | os.PathLike[str], png_path: str | os.PathLike[str], title: str = ""
) -> Path | None:
    """Train and validation loss against step as a PNG; None when matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        log.warning("matplotlib is not installed: no loss-curve plot at %s", png_path)
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    from matplotlib import pyplot as plt

    rows = read_loss_log(log_path)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for split, style in (("train", {"linewidth": 0.8, "alpha": 0.7}), ("valid", {"marker": "o"})):
        points = [(row["step"], row["loss"]) for row in rows if row["split"] == split]
        if points:
            steps, losses = zip(*points, strict=True)
            ax.plot(steps, losses, label=split, **style)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return png_path
