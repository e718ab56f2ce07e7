"""On a lent GPU: check the fused kernel against the full forward pass, then time it.

Each case runs in a child process with a time limit, so a kernel that hangs (blocks not all
resident, a hand-over bug) costs seconds, not the session's device budget. Needs only torch
and numpy (the device machine has no registries).

    python tools/gpu_fused_check.py [--seconds 3] [--timeout 120]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CASES = {  # paper-Medium first: a run cut short by the device's time limit keeps what it measured
    "medium paper 64/64/1024": dict(layers=13, stacks=5, residual_channels=64, dilation_channels=64,
                                    skip_channels=1024),
    "small R32 S128 (shipped widths)": dict(layers=10, stacks=5, residual_channels=32, dilation_channels=32,
                                            skip_channels=128),
    "tiny 4×2 R8 S16": dict(layers=4, stacks=2, residual_channels=8, dilation_channels=8, skip_channels=16),
    "small paper 64/64/1024": dict(layers=10, stacks=5, residual_channels=64, dilation_channels=64, skip_channels=1024),
}


def sampling_rate(engine, seconds: float, temperature: float) -> float:
    """Samples per second of `engine`, sampling 4,000-sample chunks for about `seconds`."""
    started, done = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        done += engine.sample(4000, temperature).shape[1]
    return done / (time.perf_counter() - started)


def run_case(name: str, widths: dict, half_weights: bool, seconds: float, queue) -> None:
    import numpy as np
    import torch

    from wavenet import fastpath, fused
    from wavenet.model import WaveNet, WaveNetConfig

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")
    torch.manual_seed(0)
    model = WaveNet(WaveNetConfig(**widths)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)  # livelier than the initialisation: logits that differ from sample to sample
    model = model.to(device)
    kernel = fused.cuda_kernel(device)
    layout = fused.plan(model.config, kernel.shared_bytes, kernel.sms, half_weights=half_weights)
    engine = fused.FusedStream(model, fastpath.pack_weights(model), 0, kernel, layout)
    engine.start(np.array([128]))
    steps = 600
    samples, logits = engine.sample_with_logits(steps, 0.0)
    fed = torch.from_numpy(np.concatenate([[128], samples[0, :-1]]).astype(np.int64))[None].to(device)
    with torch.no_grad():
        full = fused.as_computed(model, layout)(fed)[0].T.cpu().numpy()
    error = float(np.abs(full - logits).max() / max(1.0, np.abs(full).max()))
    rate = sampling_rate(engine, seconds, 1.0)
    queue.put({"case": name, "layout": str(engine.plan), "sms": kernel.sms, "shared_kib": kernel.shared_bytes // 1024,
               "relative_logit_error": error, "greedy_equals_argmax": bool((samples[0] == logits.argmax(1)).all()),
               "samples_per_s": round(rate), "real_time_factor_16k": round(rate / 16000, 2)})


def run_sweep(seconds: float, queue) -> None:
    """Where paper-Medium's time per sample goes: its rate with fewer layers per chain block (more
    hand-overs), fewer worker blocks, and greedy against temperature sampling."""
    import numpy as np
    import torch

    from wavenet import fastpath, fused
    from wavenet.model import WaveNet, WaveNetConfig

    model = WaveNet(WaveNetConfig(**CASES["medium paper 64/64/1024"])).eval().to("cuda")
    kernel, weights = fused.cuda_kernel(torch.device("cuda")), fastpath.pack_weights(model)
    rows = []
    for per_block, workers, temperature in ((5, 64, 1.0), (5, 64, 0.0), (3, 64, 1.0), (1, 64, 1.0), (5, 32, 1.0)):
        try:
            layout = fused.plan(model.config, kernel.shared_bytes, kernel.sms, per_block=per_block, workers=workers)
        except fused.FusedUnavailable as error:  # e.g. 65 chain blocks on a GPU with fewer multiprocessors
            rows.append({"per_block": per_block, "workers": workers, "error": str(error)})
            continue
        engine = fused.FusedStream(model, weights, 0, kernel, layout)
        engine.start(np.array([128]))
        engine.sample(2000, temperature)
        rate = sampling_rate(engine, seconds, temperature)
        rows.append({"layout": str(layout), "temperature": temperature, "samples_per_s": round(rate),
                     "us_per_sample": round(1e6 / rate, 1)})
        print(json.dumps(rows[-1]), flush=True)
    queue.put({"case": "sweep: medium paper 64/64/1024, half", "rows": rows})


def run_isolated(context, case: str, target, args: tuple, timeout: float) -> dict:
    """One case in a child process, killed after `timeout` seconds."""
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    started = time.time()
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        result = {"case": case, "error": f"no result within {timeout:.0f} s (killed)"}
    elif queue.empty():
        result = {"case": case, "error": f"child exited with {child.exitcode}"}
    else:
        result = queue.get()
    result["wall_s"] = round(time.time() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", default="")
    parser.add_argument("--sweep", action="store_true", help="only the paper-Medium layout sweep")
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    if args.sweep:
        result = run_isolated(context, "sweep", run_sweep, (args.seconds,), args.timeout)
        print(json.dumps(result), flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1))
        return
    results = []
    for name, widths in CASES.items():
        for half_weights in (True, False):
            case = f"{name}, {'half' if half_weights else 'float'} matrices"
            result = run_isolated(context, case, run_case, (case, widths, half_weights, args.seconds), args.timeout)
            results.append(result)
            print(json.dumps(result), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
