"""μ-law companding for 256 classes (paper eq. 6–7).

Class indices run 0..255; they equal librosa's quantized codes (-128..127) plus 128.
One implementation on tensors (so training-time augmentation runs on the training device);
the numpy functions wrap it.
"""
from __future__ import annotations

import math

import numpy as np
import torch

MU = 255
CLASSES = MU + 1
SILENCE = CLASSES // 2  # the class of 0.0


def encode_tensor(audio: torch.Tensor) -> torch.Tensor:
    """Float audio in [-1, 1] -> uint8 class indices (0..255), same device and shape."""
    x = audio.to(torch.float64).clamp(-1.0, 1.0)
    compressed = torch.sign(x) * torch.log1p(MU * x.abs()) / math.log1p(MU)
    # Uniform quantization of the companded value (eq. 6) on 256 evenly spaced edges:
    # class i holds edges[i-1] < value <= edges[i].
    edges = torch.linspace(-1.0, 1.0, CLASSES, dtype=torch.float64, device=x.device)
    return torch.bucketize(compressed, edges).to(torch.uint8)


def expand(companded: torch.Tensor) -> torch.Tensor:
    """Companded values in [-1, 1] -> linear amplitude (eq. 7), same dtype."""
    return torch.sign(companded) * torch.expm1(companded.abs() * math.log1p(MU)) / MU


def decode_tensor(indices: torch.Tensor) -> torch.Tensor:
    """Class indices (0..255) -> float32 audio in [-1, 0.957] (eq. 7, as librosa), same device and shape."""
    return expand((indices.to(torch.float64) - SILENCE) * 2.0 / CLASSES).to(torch.float32)


def class_edges() -> np.ndarray:
    """The linear amplitudes between classes, float64 [CLASSES]: class i holds (edges[i-1], edges[i]]."""
    return expand(torch.linspace(-1.0, 1.0, CLASSES, dtype=torch.float64)).numpy()


def encode(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] -> uint8 class indices (0..255)."""
    audio = np.asarray(audio, dtype=np.float64)
    return encode_tensor(torch.from_numpy(np.ascontiguousarray(audio))).numpy().reshape(audio.shape)


def decode(indices: np.ndarray) -> np.ndarray:
    """uint8/int class indices (0..255) -> float32 audio in [-1, 0.957] (eq. 7)."""
    indices = np.asarray(indices)
    return decode_tensor(torch.from_numpy(np.ascontiguousarray(indices))).numpy().reshape(indices.shape)
