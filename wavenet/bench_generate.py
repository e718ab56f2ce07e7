"""Generation benchmarks: samples/s of each back-end at batch 1 (and batched), real-time factor,
and the reference code's method (the whole network over the whole history for every sample)."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from wavenet import fastpath
from wavenet.model import PAPER_WIDTHS, WaveNet, WaveNetConfig
from wavenet.sampler import open_stream, packed_weights

MIN_P = 0.05  # the truncation whose cost the benchmark reports

CASES = {
    "small R32 S256": WaveNetConfig.preset("small", residual_channels=32, dilation_channels=32, skip_channels=256),
    "small R32 S128 (shipped)": WaveNetConfig.preset("small", residual_channels=32, dilation_channels=32, skip_channels=128),
    "medium R32 S128 (shipped)": WaveNetConfig.preset("medium", residual_channels=32, dilation_channels=32, skip_channels=128),
    "large R32 S128 (shipped)": WaveNetConfig.preset("large", residual_channels=32, dilation_channels=32, skip_channels=128),
    "small paper 64/64/1024": WaveNetConfig.preset("small", **PAPER_WIDTHS),
    "medium paper 64/64/1024": WaveNetConfig.preset("medium", **PAPER_WIDTHS),
}


def engine_rate(model: WaveNet, backend: str, seconds: float, batch: int = 1, half_weights: bool = True,
                min_p: float = 0.0) -> float:
    """Samples/s per stream of one generation back-end over about `seconds` of wall time (T=1).

    `half_weights=False` runs the compiled step on float32 matrices: the baseline for half weights.
    """
    if backend == "fast":
        engine = fastpath.FastStream(model, packed_weights(model), batch, 0, half_weights=half_weights)
    else:
        engine = open_stream(model, batch, 0, backend)
    engine.start(np.full(batch, 128))
    engine.sample(400, 1.0, min_p)  # warm-up (and build of the compiled step)
    started, done = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        done += engine.sample(500, 1.0, min_p).shape[1]
    return done / (time.perf_counter() - started)


def alternated_rates(variants: list[Callable[[float], float]], seconds: float) -> list[float]:
    """Each variant's best of three runs of `seconds` / 3, the variants alternated (a shared CPU's speed
    drifts within seconds, so back-to-back blocks would compare different machines)."""
    rates = [[] for _ in variants]
    for _ in range(3):
        for variant, measured in zip(variants, rates):
            measured.append(variant(seconds / 3))
    return [max(measured) for measured in rates]


@torch.no_grad()
def reference_method_rate(model: WaveNet, history: int, samples: int = 3) -> float:
    """The seed's method: one full forward pass over the whole history per new sample."""
    x = torch.randint(0, 256, (1, history))
    started = time.perf_counter()
    for _ in range(samples):
        logits = model(x)[:, :, -1]
        x = torch.cat([x, logits.argmax(1, keepdim=True)], dim=1)
    return samples / (time.perf_counter() - started)


def generation_benchmarks(seconds: float) -> dict:
    """On the CPU: the compiled step against the PyTorch step and the reference method."""
    results = {}
    rate = 16000
    print(f"generation samples/s at batch 1 (one thread: {torch.get_num_threads()} torch threads available)")
    print(f"  compiled step: {fastpath.available()[1]}")
    half = fastpath.reads_half_weights()
    from wavenet.checkpoint import DEFAULT_CHECKPOINT, list_checkpoints, load_checkpoint

    models = {name: WaveNet(config).eval() for name, config in CASES.items()}  # random weights, on the CPU
    models.update({f"checkpoint {name}": load_checkpoint(name)[0] for name in list_checkpoints()})
    print("  (reference method: measured directly, 3 new samples after 1 s of history; nothing extrapolated)")
    for name, model in models.items():
        if half:
            row = dict(zip(("fast", "fast_float32_weights"), alternated_rates(
                [lambda s: engine_rate(model, "fast", s), lambda s: engine_rate(model, "fast", s, half_weights=False)],
                2 * seconds)))
        else:
            row = {"fast": engine_rate(model, "fast", seconds)}
        row["torch"] = engine_rate(model, "torch", min(seconds, 2.0))
        row["fast_batch8_per_stream"] = engine_rate(model, "fast", seconds, batch=8)
        row["reference_method_at_1s_history"] = reference_method_rate(model, rate)
        row = {k: round(v, 1) for k, v in row.items()}
        row["real_time_factor"] = round(row["fast"] / rate, 2)
        row["speedup_vs_torch_step"] = round(row["fast"] / row["torch"], 1)
        halves = ""
        if half:
            row["half_vs_float32_weights"] = round(row["fast"] / row["fast_float32_weights"], 2)
            halves = f" = {row['half_vs_float32_weights']:.2f}× float32 weights ({row['fast_float32_weights']:,.0f})"
        row["speedup_vs_reference_method"] = round(row["fast"] / row["reference_method_at_1s_history"])
        results[name] = row
        print(f"  {name:<27} compiled {row['fast']:>9,.0f} ({row['real_time_factor']:.2f}× real time{halves})"
              f"  ×8 batch {row['fast_batch8_per_stream']:>7,.0f}/stream   torch step {row['torch']:>6,.0f}"
              f"   reference method {row['reference_method_at_1s_history']:>6.1f}   -> {row['speedup_vs_torch_step']}× / "
              f"{row['speedup_vs_reference_method']:,}×")
    default = models[f"checkpoint {DEFAULT_CHECKPOINT}"]  # loaded above, with every shipped checkpoint
    plain, truncated = alternated_rates([lambda s: engine_rate(default, "fast", s),
                                         lambda s: engine_rate(default, "fast", s, min_p=MIN_P)], 2 * seconds)
    results["min_p"] = {"checkpoint": DEFAULT_CHECKPOINT, "min_p": MIN_P, "plain": round(plain, 1),
                        "truncated": round(truncated, 1), "ratio": round(truncated / plain, 3)}
    print(f"  min-p {MIN_P:g} on {DEFAULT_CHECKPOINT}: compiled {truncated:,.0f} against {plain:,.0f} plain "
          f"= {truncated / plain:.3f}× (alternated, best of 3 each)")
    return results


def gpu_generation_benchmarks(seconds: float, device: torch.device) -> dict:
    """On a CUDA device, batch 1: the fused persistent kernel against the per-op PyTorch step
    (which is launch-bound), plus the PyTorch step at batch 8 (samples/s per stream)."""
    from wavenet import fused
    from wavenet.checkpoint import list_checkpoints, load_checkpoint

    ok, why = fused.available(device)
    print(f"GPU generation on {torch.cuda.get_device_name(device)}: {why}")
    models = {name: WaveNet(config).eval() for name, config in CASES.items()}
    models.update({f"checkpoint {name}": load_checkpoint(name)[0] for name in list_checkpoints()})
    results = {}
    for name, model in models.items():
        model = model.to(device)
        row = {"torch_step": engine_rate(model, "torch", min(seconds, 2.0)),
               "torch_step_batch8_per_stream": engine_rate(model, "torch", min(seconds, 2.0), batch=8)}
        if ok:
            try:
                kernel = fused.cuda_kernel(device)
                layout = fused.plan(model.config, kernel.shared_bytes, kernel.sms)
                row["fused"] = engine_rate(model, "fused", seconds)
                row["fused_layout"] = f"{layout.chains} chain blocks × {layout.per_block} layers + {layout.workers} workers"
            except fused.FusedUnavailable as error:
                row["fused_skipped"] = str(error)
        results[name] = row
        fused_text = (f"fused {row['fused']:>9,.0f} ({row['fused'] / 16000:.2f}× real time, {row['fused_layout']})"
                      if "fused" in row else f"fused: {row.get('fused_skipped', why)}")
        print(f"  {name:<27} {fused_text}   torch step {row['torch_step']:>6,.0f}   "
              f"torch step ×8 {row['torch_step_batch8_per_stream']:>6,.0f}/stream")
    return results
