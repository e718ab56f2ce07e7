"""Write a shipped checkpoint's model card (README.md) with measured numbers and examples.

    python tools/make_card.py checkpoints/piano-small --observations "..."

Measures bits/sample on validation clips and on the real piano clip (never trained on),
the compiled step's generation speed on this machine, and writes an example unique take
and a continuation of the real clip, each with its CQT image.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from wavenet import mulaw  # noqa: E402
from wavenet.analysis import (attack_rate, bits_per_sample, continuation_flatness, cqt_png,  # noqa: E402
                              following_flatness, linear_prediction_bits, spectral_flatness)
from wavenet.audio import load_audio, save_audio  # noqa: E402
from wavenet.bench import cpu_name  # noqa: E402
from wavenet.checkpoint import load_checkpoint  # noqa: E402
from wavenet.data import ClipSet  # noqa: E402
from wavenet.sampler import GenerationSettings, generate, stream  # noqa: E402
from wavenet.train import step_samples  # noqa: E402

REAL_CLIP = Path(__file__).resolve().parent.parent / "assets" / "fats_waller_aint_misbehavin_45s.wav"


def validation_rows(folder: Path, clips: int, second_set: bool = False) -> tuple[torch.Tensor, int]:
    """`clips` validation clips spread evenly over the split (μ-law uint8 [clips, samples]) and their rate.
    `second_set`: as many others, spread evenly over the clips the first set leaves out (a second look at
    a run that was already measured needs audio its first look did not decide on)."""
    data = ClipSet.load(folder, "val")
    chosen = spread_evenly(clips, torch.arange(len(data)))
    if second_set:
        left_out = torch.ones(len(data), dtype=torch.bool)
        left_out[chosen] = False
        chosen = spread_evenly(clips, torch.arange(len(data))[left_out])
    return data.clips[chosen], data.sample_rate


def spread_evenly(count: int, among: torch.Tensor) -> torch.Tensor:
    """`count` of the indices `among` (all of them if fewer), evenly spaced from the first to the last."""
    return among[torch.linspace(0, len(among) - 1, min(count, len(among))).long()]


def speed(model, seconds: float = 3.0) -> float:
    done, started = 0, time.perf_counter()
    for chunk in stream(model, GenerationSettings(seconds=seconds, seed=0)):
        done = chunk.done
    return done / (time.perf_counter() - started)


SPEED_ROW = "| generation speed, compiled CPU step, batch 1, one thread |"


def speed_row(samples_per_s: float, rate: int) -> str:
    return f"{SPEED_ROW} {samples_per_s:,.0f} samples/s = {samples_per_s / rate:.2f}× real time ({cpu_name()}) |"


def remeasure_speed(folder: Path) -> None:
    """Only the generation speed (after an engine change): the card's row and config.json's figures."""
    model, info = load_checkpoint(folder)
    samples_per_s = speed(model)
    info["evaluation"].update(generation_samples_per_s=round(samples_per_s),
                              real_time_factor=round(samples_per_s / model.config.sample_rate, 2))
    (folder / "config.json").write_text(json.dumps(info, indent=1))
    card = folder / "README.md"
    lines = [speed_row(samples_per_s, model.config.sample_rate) if line.startswith(SPEED_ROW) else line
             for line in card.read_text().splitlines()]
    card.write_text("\n".join(lines) + "\n")
    print(f"{folder.name}: {samples_per_s:,.0f} samples/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--speed-only", action="store_true", help="re-measure only the generation speed")
    parser.add_argument("--val", default="data/heldout16k",
                        help="held-out clips (tools/heldout_set.py): no training render was drawn from their scores")
    parser.add_argument("--val-clips", type=int, default=24)
    parser.add_argument("--observations", default="")
    parser.add_argument("--history", default="", help="how the model was trained, in words")
    parser.add_argument("--sounds-like", default="", help="what its takes sound like, in a few words (the studio shows it)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    folder = Path(args.checkpoint)
    if args.speed_only:
        remeasure_speed(folder)
        return
    model, info = load_checkpoint(folder)
    config, training = model.config, info.get("training", {})
    rate = config.sample_rate
    real = load_audio(REAL_CLIP, rate)
    real_bits = bits_per_sample(model, real[: 20 * rate])[1]
    clips = [mulaw.decode(row) for row in validation_rows(Path(args.val), args.val_clips)[0].numpy()]
    val_bits = float(np.mean([bits_per_sample(model, clip)[1] for clip in clips]))
    linear_bits = float(np.mean([linear_prediction_bits(clip) for clip in clips]))
    samples_per_s = speed(model)

    unique = generate(model, GenerationSettings(seconds=4.0, temperature=1.0, seed=1))[0]
    save_audio(folder / "example_unique.wav", unique, rate)
    (folder / "example_unique_cqt.png").write_bytes(cqt_png(unique, rate, "unique, T=1.0, seed 1"))
    prime = real[: 3 * rate]
    continued = generate(model, GenerationSettings(seconds=5.0, temperature=1.0, seed=1, include_prime=True), prime)[0]
    save_audio(folder / "example_continuation.wav", continued, rate)
    (folder / "example_continuation_cqt.png").write_bytes(
        cqt_png(continued, rate, "3 s of the real clip, then 5 s continuation (T=1.0, seed 1)"))

    unique_takes = [unique] + [generate(model, GenerationSettings(seconds=4.0, temperature=1.0, seed=seed))[0]
                               for seed in (2, 3, 4)]
    unique_flatness = float(np.median([spectral_flatness(take) for take in unique_takes]))
    unique_attacks = float(np.median([attack_rate(take, rate) for take in unique_takes]))
    continuation = continued[len(prime):]
    continued_flatness = spectral_flatness(continuation)
    continuation_attacks = attack_rate(continuation, rate)
    held_out_continuation = continuation_flatness(model, clips)
    held_out_following = following_flatness(clips, rate)
    real_flatness = spectral_flatness(real[: 20 * rate])
    real_attacks = attack_rate(real[: 20 * rate], rate)
    measured = {"val_bits_per_sample": round(val_bits, 3), "val_linear_prediction_bits": round(linear_bits, 3),
                "real_clip_bits_per_sample": round(real_bits, 3),
                "generation_samples_per_s": round(samples_per_s), "real_time_factor": round(samples_per_s / rate, 2),
                "unique_spectral_flatness": round(unique_flatness, 4),
                "continuation_spectral_flatness": round(continued_flatness, 4),
                "unique_attacks_per_s": round(unique_attacks, 2), "continuation_attacks_per_s": round(continuation_attacks, 2),
                "validation_continuation_flatness": round(held_out_continuation, 4),
                "measured_on": cpu_name(), "sounds_like": args.sounds_like or "not described"}
    info["evaluation"] = measured
    (folder / "config.json").write_text(json.dumps(info, indent=1))
    name = folder.name
    hours = training.get("audio_hours_seen", 0)
    accumulate, processes = training.get("accumulate", 1), training.get("processes", 1)
    card = f"""# {name}

WaveNet ({config.layers} layers × {config.stacks} stacks), residual = dilation = {config.residual_channels}, skip = {config.skip_channels},
256 μ-law classes, {rate} Hz. {model.parameter_count():,} parameters. Receptive field {config.receptive_field} samples
= {config.receptive_field_ms:.0f} ms.

## Data
{info.get("data", "")}

Solo-piano performances rendered from music21's bundled scores (Bach chorales and keyboard works, Beethoven,
Mozart and Haydn quartets, Schumann, Joplin, Chopin and others, every part played on the piano) through the
Salamander Grand Piano V3 samples, with MIDI-level augmentation: transposition ±3 semitones, tempo ×0.9–1.1,
velocity phrase curves with jitter, ~10 ms onset jitter, sustain pedal. Rebuild it with `python -m wavenet corpus`
(`--texture melody`: only each score's top line, without pedal).

## Training
{args.history}

| | |
|---|---|
| steps | {training.get("steps")} |
| audio seen | {hours:.2f} h ({training.get("samples_seen", 0):.3g} samples) |
| wall time | {training.get("wall_seconds")} s on {training.get("device")} |
| batch × output length | {training.get("batch_size")} × {training.get("output_length")} (last stage) |
| samples per optimizer step | {step_samples(training, processes):,} (last stage: {accumulate} accumulated × {processes} processes) |
| train loss (last) | {training.get("train_loss")} nats/sample |
| validation loss (best) | {training.get("val_loss")} nats/sample |

## Evaluation (measured by `tools/make_card.py`)

| | |
|---|---|
| bits/sample, {args.val_clips} validation clips (held-out scores) | {val_bits:.3f} (linear prediction on the same clips: {linear_bits:.3f}) |
| bits/sample, the real piano clip (Fats Waller, 20 s, never trained on) | {real_bits:.3f} |
{speed_row(samples_per_s, rate)}
| spectral flatness of unique takes (T=1.0, median of 4 seeds) | {unique_flatness:.4f} |
| spectral flatness of the 5 s continuation of the real clip | {continued_flatness:.4f} |
| attacks per second, unique takes (median of 4 seeds) | {unique_attacks:.2f} |
| attacks per second, the 5 s continuation | {continuation_attacks:.2f} |
| spectral flatness of the first second added after 3 s of each validation clip (T=1.0, median of {len(clips)}) | {held_out_continuation:.4f} (what really follows: {held_out_following:.4f}) |

Baselines for the real clip's bits/sample: unigram ≈ 7.4, previous-sample ≈ 5.4, bigram ≈ 5.2. Linear prediction
(`wavenet.analysis.linear_prediction_bits`: order-32 LPC refitted every 25 ms on the 0.5 s before, Laplace residual,
scored after each clip's first 0.5 s) is what a model gets from resonances alone; below it is what the WaveNet learned
beyond them. Spectral flatness
(median over audible frames; 0 = pure tones, 1 = white noise): the real clip {real_flatness:.4f}, the training renders
≈ 0.0006–0.0008 (melody texture ≈ 0.0002–0.0003), white noise ≈ 0.56. Attacks per second (onset-strength peaks
at least 3× the take's mean, `wavenet.analysis.attack_rate`: struck notes, but clicks count too): the real clip
{real_attacks:.2f}, steady noise or a drone 0.

## Examples
- `example_unique.wav`: 4 s unique generation, temperature 1.0, seed 1 — CQT: `example_unique_cqt.png`
- `example_continuation.wav`: 3 s of the real clip, then a 5 s continuation — CQT: `example_continuation_cqt.png`

## Where it stands
{args.observations}

## Licence
The weights are derived from audio rendered with the Salamander Grand Piano V3 samples by Alexander Holm
(CC BY 3.0): use them under CC BY 3.0, crediting Alexander Holm for the samples. The scores are public-domain works
from the music21 corpus.
"""
    (folder / "README.md").write_text(card)
    print(json.dumps(measured, indent=1))


if __name__ == "__main__":
    main()
