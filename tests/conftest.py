from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["OMP_NUM_THREADS"] = "1"  # 2 threads on 2 busy cores stall each other
os.environ["WAVENET_STUDIO_VISITORS"] = tempfile.mkdtemp(prefix="studio-visitors-")  # not the user's own takes
atexit.register(shutil.rmtree, os.environ["WAVENET_STUDIO_VISITORS"], True)

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


def shares_of_the_likeliest(model: WaveNet, fed: np.ndarray) -> np.ndarray:
    """For each sample after the first of `fed` (μ-law indices, fed in this order), its probability
    under the full forward pass as a share of the likeliest class's: what min-p sampling bounds."""
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(fed.astype(np.int64))[None])[0].T, dim=1)
    drawn = probs[torch.arange(len(fed) - 1), torch.from_numpy(fed[1:]).long()]
    return (drawn / probs[:-1].max(dim=1).values).numpy()


@pytest.fixture
def piano_clip() -> Path:
    return PIANO_CLIP


def tone(seconds: float, rate: int = 16000, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t) * np.exp(-t)).astype(np.float32)


def synthetic_bank(path, rate=16000):
    """A tiny stand-in for the Salamander bank: decaying harmonic tones at 4 pitches × 2 velocities."""
    pitches, layers = np.array([36, 48, 60, 72]), np.array([4, 12])
    clips = []
    for pitch in pitches:
        for layer in layers:
            t = np.arange(rate) / rate
            f = 440 * 2 ** ((pitch - 69) / 12)
            tone = sum(np.sin(2 * np.pi * f * k * t) / k for k in (1, 2, 3)) * np.exp(-3 * t) * layer / 16
            clips.append(np.round(tone / 2 * 32767).astype(np.int16))
    np.savez_compressed(path, pitches=pitches, layers=layers, lengths=np.array([len(c) for c in clips]),
                        data=np.concatenate(clips), sample_rate=rate)


@pytest.fixture(scope="session")
def score_cache(tmp_path_factory):
    """A note pack of two Bach chorales and a synthetic sample bank: the corpus inputs, in seconds."""
    from music21 import corpus as m21

    from wavenet.corpus import build_note_pack, export_midi

    root = tmp_path_factory.mktemp("cache")
    (root / "midi").mkdir()
    chorales = sorted(str(p) for p in m21.getComposer("bach") if "bwv26" in str(p))[:1]
    chorales += sorted(str(p) for p in m21.getComposer("bach") if "bwv3" in str(p))[:1]
    for path in chorales:
        assert export_midi(("bach", path, str(root / "midi")))[1] is None
    build_note_pack(root / "midi", root / "notes.npz")
    synthetic_bank(root / "bank16k.npz")
    return root
