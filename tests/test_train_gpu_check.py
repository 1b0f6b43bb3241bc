"""train.gpu_check: on a machine without CUDA it refuses clearly instead of running."""

from __future__ import annotations

import json

import pytest
import torch

from train.gpu_check import main


def test_refuses_without_cuda(capsys: pytest.CaptureFixture[str]) -> None:
    assert not torch.cuda.is_available()
    assert main(["--iters", "2"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report == {
        "ok": False,
        "error": "CUDA is not available: run this on a machine with a CUDA GPU",
    }
