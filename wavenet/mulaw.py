"""μ-law companding for 256 classes (paper eq. 6–7).

Class indices run 0..255; they equal librosa's quantized codes (-128..127) plus 128.
"""
from __future__ import annotations

import numpy as np

MU = 255
CLASSES = MU + 1


def encode(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] -> uint8 class indices (0..255)."""
    x = np.clip(np.asarray(audio, dtype=np.float64), -1.0, 1.0)
    compressed = np.sign(x) * np.log1p(MU * np.abs(x)) / np.log1p(MU)
    # Uniform quantization of the companded value (eq. 6) on 256 evenly spaced edges.
    edges = np.linspace(-1.0, 1.0, num=CLASSES)
    return np.digitize(compressed, edges, right=True).astype(np.uint8)


def decode(indices: np.ndarray) -> np.ndarray:
    """uint8/int class indices (0..255) -> float32 audio in [-1, 1] (eq. 7)."""
    centred = (np.asarray(indices, dtype=np.float64) - CLASSES // 2) * 2.0 / CLASSES
    return (np.sign(centred) * np.expm1(np.abs(centred) * np.log1p(MU)) / MU).astype(np.float32)
