"""Benchmarks that print numbers (and write JSON); never pass/fail timing tests."""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from wavenet.model import PAPER_WIDTHS, PRESETS, WaveNet, WaveNetConfig
from wavenet.reference import ReferenceWaveNet
from wavenet.train import PRECISIONS, autocast, next_sample_loss

SHIPPED_WIDTHS = {"residual_channels": 32, "dilation_channels": 32, "skip_channels": 128}
MEMORY_LIMIT_BYTES = 6e9  # skip a CPU measurement whose activations would not fit comfortably


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {torch.get_num_threads()} threads"


def timed(step, seconds: float, device: torch.device) -> float:
    """Calls per second of `step` over about `seconds` (after one warm-up call)."""
    step()
    calls, started = 0, time.perf_counter()
    while True:
        step()
        calls += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls / elapsed


def train_rates(config: WaveNetConfig, device: torch.device, seconds: float, output_length: int = 2000) -> dict:
    """Training throughput of ours and of the reference on the same windows (receptive field + output).

    Both read the same window per step. The reference puts every position in its loss,
    padded history included; ours only the `output_length` positions that see a full
    receptive field, and skips computing the others. Reported: window samples/s (the same
    work for both), and the fully-informed predictions per second.
    """
    window = config.receptive_field + output_length
    activations = 4 * window * (config.residual_channels * 3 + config.dilation_channels * 3 + config.skip_channels)
    if device.type == "cpu" and activations * len(config.dilations) > MEMORY_LIMIT_BYTES:
        return {"skipped": f"activations ~{activations * len(config.dilations) / 1e9:.0f} GB: too large for this machine"}
    crops = torch.randint(0, 256, (1, window + 1), device=device)
    ours = WaveNet(config).to(device)
    reference = ReferenceWaveNet(config.layers, config.stacks, config.residual_channels, config.dilation_channels,
                                 config.skip_channels).to(device)
    optim_ours = torch.optim.Adam(ours.parameters())
    optim_ref = torch.optim.Adam(reference.parameters())

    def step_ours(precision: str = PRECISIONS[0]):
        optim_ours.zero_grad()
        with autocast(precision, device):
            loss = next_sample_loss(ours, crops, config.receptive_field)
        loss.backward()
        optim_ours.step()

    def step_reference():
        optim_ref.zero_grad()
        logits = reference(crops[:, :-1])
        F.cross_entropy(logits, crops[:, 1:]).backward()
        optim_ref.step()

    ours_steps = timed(step_ours, seconds, device)
    bf16_steps = timed(lambda: step_ours("bf16"), seconds, device)
    reference_steps = timed(step_reference, seconds, device)
    return {"window": window, "ours_window_samples_per_s": round(ours_steps * window),
            "reference_window_samples_per_s": round(reference_steps * window),
            "ratio": round(ours_steps / reference_steps, 2),
            "ours_bf16_window_samples_per_s": round(bf16_steps * window),
            "bf16_ratio": round(bf16_steps / ours_steps, 2),
            "ours_full_context_predictions_per_s": round(ours_steps * output_length)}
def run_benchmarks(args) -> None:
    device = torch.device(args.device)
    results = {"device": device_description(device), "torch": torch.__version__, "train": {}}
    print(f"device: {results['device']}  (torch {torch.__version__})")
    if args.what in ("train", "all"):
        print("training throughput, batch 1, window = receptive field + 2000 samples: window samples/s of ours vs the "
              "reference re-implementation (same windows), and ours' fully-informed predictions/s")
        for preset in PRESETS:
            for label, widths in (("shipped", SHIPPED_WIDTHS), ("paper", PAPER_WIDTHS)):
                config = WaveNetConfig.preset(preset, **widths)
                name = f"{preset}-{label} ({config.layers}×{config.stacks}, R{config.residual_channels} S{config.skip_channels})"
                row = train_rates(config, device, args.seconds)
                results["train"][name] = row
                if "skipped" in row:
                    print(f"  {name:<38} skipped: {row['skipped']}")
                else:
                    print(f"  {name:<38} ours {row['ours_window_samples_per_s']:>9,}   reference "
                          f"{row['reference_window_samples_per_s']:>9,}   ratio {row['ratio']:.2f}×   "
                          f"(ours: {row['ours_full_context_predictions_per_s']:,} full-context predictions/s; "
                          f"bf16 autocast {row['ours_bf16_window_samples_per_s']:,} = {row['bf16_ratio']:.2f}× float32)")
    if args.what in ("generate", "all"):
        from wavenet.bench_generate import generation_benchmarks, gpu_generation_benchmarks

        if device.type != "cpu":
            print(f"CPU generation benchmarks ({cpu_name()})")
        results["generate"] = generation_benchmarks(args.seconds)
        if device.type == "cuda":
            results["generate_gpu"] = gpu_generation_benchmarks(args.seconds, device)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.json}")
