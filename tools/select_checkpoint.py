"""Choose among the checkpoints a run kept (`wavenet train --keep-checkpoints`) by their takes.

    python tools/select_checkpoint.py runs/my-run --seeds 1-8 --max-flatness 0.0017

What a checkpoint's takes do (struck onsets or a drone) changes far more from one checkpoint to
the next than its bits/sample does, so a run's last checkpoint is a poor sample of it. Each kept
checkpoint makes unique takes (temperature 1, the given seeds and length); the table gives their
median attacks per second (struck notes, `wavenet.analysis.attack_rate`) and median spectral
flatness (lower: more tonal). The choice: the most attacks among checkpoints at or under
--max-flatness, ties to the lower flatness; none when no checkpoint qualifies. Scores are kept in
each checkpoint's folder (`takes.json`), so a growing run is scored only where it is new.
Seeds used to choose should not be the seeds a rule then confirms the choice with.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from wavenet.analysis import attack_rate, spectral_flatness  # noqa: E402
from wavenet.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from wavenet.sampler import GenerationSettings, generate  # noqa: E402
from wavenet.train import KEPT_CHECKPOINTS  # noqa: E402

SCORES = "takes.json"


def seed_range(text: str) -> list[int]:
    """'1-8' -> 1..8; '3' -> [3]."""
    first, _, last = text.partition("-")
    try:
        seeds = list(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds as FIRST-LAST, like 1-8, not {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"{text!r} holds no seeds")
    return seeds


def take_scores(folder: Path, seeds: list[int], seconds: float) -> dict:
    """Median attacks/s and flatness of the checkpoint's unique takes, measured once per seeds and length."""
    key = f"seeds {seeds[0]}-{seeds[-1]}, {seconds:g} s"
    cache = folder / SCORES
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):  # none yet, or cut short by a kill: measure again
        known = {}
    if key not in known:
        model, info = load_checkpoint(folder)
        rate = model.config.sample_rate
        measured = []
        for seed in seeds:
            audio = generate(model, GenerationSettings(seconds=seconds, temperature=1.0, seed=seed))[0]
            measured.append((attack_rate(audio, rate), spectral_flatness(audio)))
        attacks, flatness = np.median(np.array(measured), axis=0)
        training = info.get("training") or {}
        own_loss = training.get("last_val_loss")  # this checkpoint's; val_bits_per_sample is the run's best so far
        known[key] = {"attacks_per_s": float(attacks), "flatness": float(flatness), "step": training.get("steps"),
                      "val_bits": own_loss / math.log(2) if own_loss is not None else None}
        cache.write_text(json.dumps(known, indent=1))
    return known[key]


def choose(scores: dict[str, dict], max_flatness: float) -> str | None:
    """The most attacks among the checkpoints at or under max_flatness, ties to the lower flatness."""
    allowed = [name for name, s in scores.items() if s["flatness"] <= max_flatness]
    return max(allowed, key=lambda name: (scores[name]["attacks_per_s"], -scores[name]["flatness"]), default=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder trained with --keep-checkpoints")
    parser.add_argument("--seeds", type=seed_range, default=seed_range("1-8"), help="unique takes' seeds, FIRST-LAST")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each take")
    parser.add_argument("--max-flatness", type=float, required=True,
                        help="checkpoints whose takes' median flatness is above this are not chosen")
    parser.add_argument("--from-step", type=int, default=0, help="only checkpoints from this step on")
    args = parser.parse_args()

    kept = sorted((args.run / KEPT_CHECKPOINTS).glob("step*[0-9]"))
    kept = [folder for folder in kept if int(folder.name.removeprefix("step")) >= args.from_step]
    if not kept:
        sys.exit(f"error: {args.run} has no kept checkpoints{f' from step {args.from_step}' if args.from_step else ''} "
                 f"(train with --keep-checkpoints)")
    scores = {}
    print(f"{'checkpoint':<14} {'attacks/s':>9} {'flatness':>9} {'val bits':>9}", flush=True)
    for folder in kept:
        try:
            scores[folder.name] = take_scores(folder, args.seeds, args.seconds)
        except CheckpointError as error:
            print(f"{folder.name:<14} skipped: {error}", flush=True)
            continue
        s = scores[folder.name]
        bits = f"{s['val_bits']:.3f}" if s["val_bits"] is not None else "—"
        print(f"{folder.name:<14} {s['attacks_per_s']:>9.3f} {s['flatness']:>9.5f} {bits:>9}", flush=True)
    chosen = choose(scores, args.max_flatness)
    if chosen is None:
        print(f"chosen: none (no checkpoint's median flatness is at or under {args.max_flatness:g})")
    else:
        print(f"chosen: {args.run / KEPT_CHECKPOINTS / chosen}")


if __name__ == "__main__":
    main()
