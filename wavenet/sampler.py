"""Incremental generation ("fast WaveNet"): one new sample costs O(layers), not O(history).

Each layer keeps a ring buffer of its last `dilation` inputs, so the dilated convolution
for the new sample reads its past input from the buffer instead of recomputing it. All
per-generation state lives in `StreamState`, never on the (shared) model.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch

from wavenet import mulaw
from wavenet.model import WaveNet


@dataclass
class StreamState:
    """The ring buffers of one generation: per layer [B, R, dilation], plus the write position."""

    buffers: list[torch.Tensor]
    position: int = 0


@dataclass
class StepWeights:
    """The model's weights rearranged for one-sample steps (shared read-only by all generations)."""

    embed: torch.Tensor  # [classes, R]
    past: list[torch.Tensor]  # per layer [R, 2D]: applied to the input `dilation` samples ago
    now: list[torch.Tensor]  # per layer [R, 2D]: applied to the current input
    bias: list[torch.Tensor]  # per layer [2D]
    res_skip: list[torch.Tensor]  # per layer [D, R + S]
    res_skip_bias: list[torch.Tensor]  # per layer [R + S]
    end1: tuple[torch.Tensor, torch.Tensor]
    end2: tuple[torch.Tensor, torch.Tensor]

    @classmethod
    @torch.no_grad()
    def from_model(cls, model: WaveNet) -> "StepWeights":
        layers = model.layers
        return cls(
            embed=model.embed.weight.detach(),
            past=[l.dilated.weight[:, :, 0].T.contiguous() for l in layers],
            now=[l.dilated.weight[:, :, 1].T.contiguous() for l in layers],
            bias=[l.dilated.bias.detach() for l in layers],
            res_skip=[torch.cat([residual_weight(l), l.skip.weight[:, :, 0]]).T.contiguous() for l in layers],
            res_skip_bias=[torch.cat([residual_bias(l), l.skip.bias]).detach() for l in layers],
            end1=(model.end1.weight[:, :, 0].T.contiguous(), model.end1.bias.detach()),
            end2=(model.end2.weight[:, :, 0].T.contiguous(), model.end2.bias.detach()),
        )


def residual_weight(layer) -> torch.Tensor:
    """[R, D]; zeros for the last layer, whose residual output feeds nothing."""
    if layer.residual is None:
        return torch.zeros(layer.dilated.in_channels, layer.skip.in_channels, device=layer.skip.weight.device)
    return layer.residual.weight[:, :, 0]


def residual_bias(layer) -> torch.Tensor:
    if layer.residual is None:
        return torch.zeros(layer.dilated.in_channels, device=layer.skip.weight.device)
    return layer.residual.bias


def empty_state(model: WaveNet, batch: int) -> StreamState:
    """Buffers of zeros: the same as the full forward pass's causal zero padding."""
    device = model.embed.weight.device
    channels = model.config.residual_channels
    return StreamState([torch.zeros(batch, channels, d, device=device) for d in model.config.dilations])


@torch.no_grad()
def primed_state(model: WaveNet, prime: torch.Tensor) -> StreamState:
    """Fill the buffers from a prime [B, T] of μ-law indices with one parallel forward pass.

    Returns the state positioned after the prime's last sample *minus one*: the last prime
    sample is fed by the first step, which yields the logits for the first new sample.
    Each layer is run only over the inputs that can still reach a buffer: its own dilation plus
    those of the layers after it (about 0.6 of the rows of whole-prime layers for the paper's sizes).
    """
    state = empty_state(model, prime.shape[0])
    history = prime[:, :-1]
    if history.shape[1] == 0:
        return state
    x = model.embed(history.long())  # [B, T, R]
    length = history.shape[1]
    reach = np.cumsum(model.config.dilations[::-1])[::-1]  # inputs of layer k that reach a buffer
    for layer, buffer, needed in zip(model.layers, state.buffers, reach):
        d = layer.dilation
        # The ring slot for absolute time t is t % d; fill the last d inputs (zeros before time 0).
        take = min(d, x.shape[1])
        times = torch.arange(length - take, length)
        buffer[:, :, times % d] = x[:, -take:].transpose(1, 2)
        # With more inputs than needed, all of them real (not before time 0), no padding is needed.
        x = layer(x[:, -needed:])[0] if x.shape[1] > needed else layer.causal(x)[0]
    state.position = length
    return state


@torch.no_grad()
def step(weights: StepWeights, state: StreamState, current: torch.Tensor) -> torch.Tensor:
    """Feed samples `current` [B] (μ-law indices) and return logits [B, classes] for the next one."""
    x = weights.embed[current.long()]
    skips = None
    residual_channels = x.shape[1]
    for past, now, bias, res_skip, res_skip_bias, buffer in zip(
        weights.past, weights.now, weights.bias, weights.res_skip, weights.res_skip_bias, state.buffers
    ):
        slot = state.position % buffer.shape[2]
        hidden = torch.addmm(bias, buffer[:, :, slot], past).addmm_(x, now)
        buffer[:, :, slot] = x
        filt, gate = hidden.chunk(2, dim=1)
        out = torch.addmm(res_skip_bias, torch.tanh(filt) * torch.sigmoid(gate), res_skip)
        x = x + out[:, :residual_channels]
        skips = out[:, residual_channels:] if skips is None else skips + out[:, residual_channels:]
    state.position += 1
    hidden = torch.relu(torch.addmm(weights.end1[1], torch.relu(skips), weights.end1[0]))
    return torch.addmm(weights.end2[1], hidden, weights.end2[0])


def choose(logits: torch.Tensor, temperature: float, generator: torch.Generator, min_p: float = 0.0) -> torch.Tensor:
    """Next samples [B]: greedy at temperature 0, else sampled from softmax(logits / T) without the
    classes less likely than `min_p` times the likeliest one (min-p truncation)."""
    if temperature <= 0:
        return logits.argmax(dim=1)
    probs = torch.softmax(logits.float() / temperature, dim=1)
    if min_p > 0:
        probs = probs * (probs >= min_p * probs.max(dim=1, keepdim=True).values)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


MAX_SECONDS = 3600.0  # per take; front ends may set lower limits


@dataclass(frozen=True)
class GenerationSettings:
    """What a take is made from. With the checkpoint, the back-end and the machine, enough to
    reproduce it bit for bit (the compiled and PyTorch steps draw differently)."""

    seconds: float = 4.0
    temperature: float = 1.0
    seed: int = 0
    min_p: float = 0.0  # classes less likely than min_p x the likeliest are never drawn (0 = off)
    first_sample: int | None = None  # unique mode: None = random in 0..255
    variations: int = 1
    include_prime: bool = False
    chunk_samples: int = 4000

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self, classes: int, max_seconds: float = MAX_SECONDS) -> None:
        """Raise ValueError with a user-facing message for impossible settings."""
        if self.seconds <= 0 or self.variations < 1 or self.chunk_samples < 1:
            raise ValueError("seconds, variations and chunk size must be positive")
        if self.seconds > max_seconds:
            raise ValueError(f"at most {max_seconds:g} seconds per take")
        if not 0 <= self.seed < 2**63:
            raise ValueError("the seed must be in 0..2**63-1")
        if self.first_sample is not None and not 0 <= self.first_sample < classes:
            raise ValueError(f"the first sample must be in 0..{classes - 1}")
        if not np.isfinite(self.temperature) or self.temperature < 0:
            raise ValueError("the temperature must be 0 (greedy) or positive")
        if not 0 <= self.min_p < 1:
            raise ValueError("min-p must be at least 0 and below 1")


@dataclass
class Chunk:
    """Newly sampled audio [variations, n] and where the generation stands."""

    audio: np.ndarray
    done: int
    total: int
    samples_per_second: float


class TorchStream:
    """The reference back-end: the PyTorch step on the model's device (any batch, CPU or CUDA)."""

    name = "torch"

    def __init__(self, model: WaveNet, batch: int, seed: int):
        self.weights = StepWeights.from_model(model)
        self.state = empty_state(model, batch)
        self.device = model.embed.weight.device
        self.generator = torch.Generator().manual_seed(seed)
        self.current = torch.zeros(batch, dtype=torch.long, device=self.device)

    def load_buffers(self, buffers: list[torch.Tensor], position: int) -> None:
        self.state = StreamState([b.clone() for b in buffers], position)

    def start(self, first: np.ndarray) -> None:
        """The samples [B] fed first (the prime's last sample, or the unique mode's first)."""
        self.current = torch.from_numpy(np.asarray(first)).long().to(self.device)

    def sample(self, count: int, temperature: float, min_p: float = 0.0) -> np.ndarray:
        out = torch.empty(self.current.shape[0], count, dtype=torch.uint8)
        with torch.no_grad():
            for i in range(count):
                logits = step(self.weights, self.state, self.current)
                self.current = choose(logits, temperature, self.generator, min_p)
                out[:, i] = self.current.cpu()
        return out.numpy()


def open_stream(model: WaveNet, batch: int, seed: int, backend: str = "auto"):
    """A generation back-end: "fast" (the compiled CPU step), "torch" (the PyTorch step on the
    model's device), "fused" (the persistent CUDA kernel, one stream) or "auto", the fastest
    for this model, device and batch.
    """
    from wavenet import fastpath, fused

    if backend == "auto":
        backend = fastest_backend(model, batch)
    if backend == "fast":
        if fastpath.library() is None:
            raise RuntimeError(fastpath.available()[1])
        return fastpath.FastStream(model, packed_weights(model), batch, seed)
    if backend == "fused":
        if batch != 1:
            raise RuntimeError("the fused kernel generates one stream at a time")
        return fused.FusedStream(model, packed_weights(model), seed)
    return TorchStream(model, batch, seed)


_fastest: dict[tuple, str] = {}


def fastest_backend(model: WaveNet, batch: int) -> str:
    """Which back-end to use, decided once per (architecture, device, batch).

    On the CPU the compiled step always wins (30–60× the PyTorch step). For a model on a GPU
    the candidates are timed for a moment: a per-sample GPU step is launch-bound and loses at
    small batches but wins once enough streams run together; the fused kernel (one stream)
    removes the launches.
    """
    from wavenet import fastpath, fused

    device = model.embed.weight.device
    if device.type == "cpu":
        return "fast" if fastpath.library() is not None else "torch"
    key = (model.config, str(device), batch)
    if key not in _fastest:
        candidates = ["torch"] + ["fast"] * (fastpath.library() is not None)
        if batch == 1 and fused.available(device)[0]:
            candidates.append("fused")
        rates = {}
        for name in candidates:
            engine = open_stream(model, batch, 0, name)
            engine.sample(16, 1.0)  # warm-up
            started = time.perf_counter()
            engine.sample(128, 1.0)
            rates[name] = 128 / (time.perf_counter() - started)
        _fastest[key] = max(rates, key=rates.get)
    return _fastest[key]


_packed: dict[int, tuple[tuple, np.ndarray]] = {}
_packed_lock = threading.Lock()


def packed_weights(model: WaveNet) -> np.ndarray:
    """The model's weights in the compiled step's layout, packed once per model and weight version
    (training updates weights in place, which bumps their version counters)."""
    from wavenet import fastpath

    version = tuple(id(p) for p in model.parameters()) + tuple(p._version for p in model.parameters())
    with _packed_lock:
        cached = _packed.get(id(model))
        if cached is None or cached[0] != version:
            cached = (version, fastpath.pack_weights(model))
            _packed[id(model)] = cached
        return cached[1]


def stream(model: WaveNet, settings: GenerationSettings, prime: np.ndarray | None = None,
           cancel: threading.Event | None = None, backend: str = "auto") -> Iterator[Chunk]:
    """Sample chunk by chunk. `prime` (float audio at the model's rate) makes it a continuation.

    Closing the iterator or setting `cancel` stops it at the next chunk boundary. Safe to run in
    worker threads on one shared model: all state is local to this generator.
    """
    settings.check(model.config.classes)
    batch = settings.variations
    engine = open_stream(model, batch, settings.seed, backend)
    if prime is not None and len(prime):
        indices = torch.from_numpy(mulaw.encode(prime).astype(np.int64)).to(model.embed.weight.device)
        # Only the last receptive field of the prime can reach the buffers: prime on that, once.
        primed = primed_state(model, indices[None, -(model.config.receptive_field + 1):])
        engine.load_buffers([b.expand(batch, -1, -1) for b in primed.buffers], primed.position)
        first = np.full(batch, int(indices[-1]))
        if settings.include_prime:
            yield Chunk(np.repeat(mulaw.decode(indices.cpu().numpy())[None], batch, axis=0), 0, 0, 0.0)
    elif settings.first_sample is None:
        first = np.random.default_rng(settings.seed).integers(0, model.config.classes, batch)
    else:
        first = np.full(batch, settings.first_sample)
    engine.start(first)
    total = int(round(settings.seconds * model.config.sample_rate))
    started, done = time.perf_counter(), 0
    while done < total:
        if cancel is not None and cancel.is_set():
            return
        samples = engine.sample(min(settings.chunk_samples, total - done), settings.temperature, settings.min_p)
        done += samples.shape[1]
        rate = done / max(time.perf_counter() - started, 1e-9)
        yield Chunk(mulaw.decode(samples), done, total, rate)


def generate(model: WaveNet, settings: GenerationSettings, prime: np.ndarray | None = None) -> np.ndarray:
    """The whole take at once: float32 [variations, samples]."""
    chunks = [chunk.audio for chunk in stream(model, settings, prime)]
    return np.concatenate(chunks, axis=1)
