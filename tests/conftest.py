from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["OMP_NUM_THREADS"] = "1"  # 2 threads on 2 busy cores stall each other

import torch  # noqa: E402

from wavenet.model import WaveNet, WaveNetConfig  # noqa: E402

PIANO_CLIP = ROOT / "assets" / "fats_waller_aint_misbehavin_45s.wav"


@pytest.fixture
def tiny_config() -> WaveNetConfig:
    """10×2 layers at tiny widths: crosses a stack boundary, runs in milliseconds."""
    return WaveNetConfig(layers=4, stacks=2, residual_channels=8, dilation_channels=8, skip_channels=16)


def random_model(config: WaveNetConfig, seed: int = 0) -> WaveNet:
    """A model with livelier weights than the initialisation (logits that vary from step to step)."""
    torch.manual_seed(seed)
    model = WaveNet(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model


@pytest.fixture
def piano_clip() -> Path:
    return PIANO_CLIP


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t) * np.exp(-t)).astype(np.float32)
