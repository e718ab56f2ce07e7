"""The compiled CPU step (wavenet/csrc/step.cpp), loaded with ctypes.

Built on first use with the machine's C++ compiler (-O3 -march=native -ffast-math) into
wavenet/_build/, keyed by the source and compiler flags, so a fresh clone needs nothing but
g++. Where no compiler works, `available()` says why and the PyTorch step is used instead.

Streams read their matrices as IEEE half where the library can (AVX-512 or AVX2+F16C, at the
shipped widths): the step is bound by weight bandwidth, and half is closer to float32 than the
bfloat16 the shipped models were trained under. `half_weights=False` keeps float32 (the
benchmark's baseline).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import torch

from wavenet.model import WaveNet

SOURCE = Path(__file__).resolve().parent / "csrc" / "step.cpp"
BUILD_DIR = Path(__file__).resolve().parent / "_build"
FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-shared", "-fPIC", "-std=c++17"]

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_failure: str | None = None

_f32 = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
_i32 = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")
_u8 = np.ctypeslib.ndpointer(np.uint8, flags="C_CONTIGUOUS")
_u64 = np.ctypeslib.ndpointer(np.uint64, flags="C_CONTIGUOUS")
HALF_MAX = 65504.0


def build_library(stem: str, source: Path, flags: list[str], headers: tuple[Path, ...] = ()) -> ctypes.CDLL:
    """Compile `source` with the machine's C++ compiler into wavenet/_build/, once per content of
    the source, its headers and the flags (concurrent builders each write their own temp file)."""
    compiler = os.environ.get("CXX", "g++")
    content = b"".join(p.read_bytes() for p in (source, *headers)) + " ".join([compiler, *flags]).encode()
    target = BUILD_DIR / f"{stem}_{hashlib.sha1(content).hexdigest()[:12]}.so"
    if not target.exists():
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run([compiler, *flags, str(source), "-o", str(tmp)], check=True, capture_output=True, text=True)
        os.replace(tmp, target)
    return ctypes.CDLL(str(target))


def _build() -> ctypes.CDLL:
    library = build_library("step", SOURCE, FLAGS)
    library.wavenet_reads_half_weights.restype = ctypes.c_int
    library.wavenet_run.restype = ctypes.c_int
    library.wavenet_run.argtypes = [
        _f32, ctypes.c_void_p, _i32,
        ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
        _f32, ctypes.POINTER(ctypes.c_int64), _i32, ctypes.c_int32, ctypes.c_float, ctypes.c_float, _u64, _u8, _f32,
        ctypes.POINTER(ctypes.c_int32),
    ]
    return library


def library() -> ctypes.CDLL | None:
    """The compiled step library, built once per process (None where it cannot be built)."""
    global _library, _failure
    with _lock:
        if _library is None and _failure is None:
            try:
                _library = _build()
            except (OSError, subprocess.CalledProcessError) as error:
                detail = getattr(error, "stderr", "") or str(error)
                _failure = f"the C++ step could not be built ({detail.strip()[:300]})"
    return _library


def available() -> tuple[bool, str]:
    if library() is None:
        return False, _failure
    halves = " (half-precision weights at the shipped widths)" if reads_half_weights() else ""
    return True, f"compiled C++ step{halves}"


def reads_half_weights() -> bool:
    """Whether this machine's build reads IEEE-half matrices (AVX-512 or AVX2+F16C intrinsics)."""
    return library() is not None and bool(library().wavenet_reads_half_weights())


@torch.no_grad()
def pack_weights(model: WaveNet) -> np.ndarray:
    """All weights in the layout step.cpp reads: input-major matrices, one flat float32 array."""
    from wavenet.sampler import StepWeights

    w = StepWeights.from_model(model)  # read-only: the (shared) model stays on its device
    parts = [w.embed]
    for past, now, bias, res_skip, res_skip_bias in zip(w.past, w.now, w.bias, w.res_skip, w.res_skip_bias):
        parts += [past, now, bias, res_skip, res_skip_bias]
    parts += [w.end1[0], w.end1[1], w.end2[0], w.end2[1]]
    return np.concatenate([p.detach().float().cpu().reshape(-1).numpy() for p in parts]).astype(np.float32)


class FastStream:
    """One generation's state (ring buffers, position, RNG) driven by the compiled step."""

    def __init__(self, model: WaveNet, weights: np.ndarray, batch: int, seed: int, half_weights: bool = True):
        config = model.config
        self.model, self.weights, self.batch = model, weights, batch
        self.half_weights = half_weights and reads_half_weights()
        self.halves = (np.clip(weights, -HALF_MAX, HALF_MAX).astype(np.float16).view(np.uint16)
                       if self.half_weights else None)
        self.dims = (config.layers * config.stacks, config.residual_channels, config.dilation_channels,
                     config.skip_channels, config.classes)
        self.dilations = np.array(config.dilations, dtype=np.int32)
        self.state = np.zeros(batch * config.residual_channels * int(self.dilations.sum()), dtype=np.float32)
        self.position = ctypes.c_int64(0)
        self.current = np.zeros(batch, dtype=np.int32)
        seeds = np.random.SeedSequence(seed).generate_state(batch, dtype=np.uint64)
        self.rng = np.ascontiguousarray(seeds, dtype=np.uint64)

    def load_buffers(self, buffers: list[torch.Tensor], position: int) -> None:
        """Take over ring buffers filled by the PyTorch priming pass ([B, R, d] per layer)."""
        self.state[:] = np.concatenate([b.detach().cpu().permute(0, 2, 1).reshape(-1).numpy() for b in buffers])
        self.position.value = position

    def start(self, first: np.ndarray) -> None:
        """The samples [B] fed first (the prime's last sample, or the unique mode's first)."""
        self.current[:] = first

    def _run(self, samples: int, temperature: float, min_p: float, out: np.ndarray, logits: np.ndarray) -> int:
        layers, r, d, s, c = self.dims
        halves = None if self.halves is None else self.halves.ctypes.data_as(ctypes.c_void_p)
        return library().wavenet_run(self.weights, halves, self.dilations, layers, r, d, s, c, self.batch, self.state,
                                     ctypes.byref(self.position), self.current, samples, float(temperature), float(min_p),
                                     self.rng, out, logits, None)

    def logits(self, current: np.ndarray) -> np.ndarray:
        """Feed `current` [B] and return the logits [B, classes] for the next sample (the oracle check)."""
        self.current[:] = current
        logits = np.zeros((self.batch, self.dims[4]), dtype=np.float32)
        self._run(0, 0.0, 0.0, np.zeros(1, np.uint8), logits)
        return logits

    def sample(self, count: int, temperature: float, min_p: float = 0.0) -> np.ndarray:
        """`count` new samples per stream: uint8 [B, count]; the last one is fed next time."""
        out = np.zeros((self.batch, count), dtype=np.uint8)
        done = self._run(count, temperature, min_p, out, np.zeros(1, np.float32))
        return out[:, :done]
