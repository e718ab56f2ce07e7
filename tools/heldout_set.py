"""Render the evaluation set: performances of scores no training stage has ever rendered.

Every shipped checkpoint trained on renders drawn from one plan: `render_plan(pack, hours,
seed=1)` walks one seeded permutation of music21's scores, so the 8 h render in data/piano16k
and every GPU render up to 24 h (tools/gpu_train.py) are prefixes of the 24 h plan. The scores
outside that plan were never rendered for training, by any stage or split rule; this renders
them, in the plan's permutation order, into a prepared dataset whose validation split is the
evaluation set.

    python tools/heldout_set.py data/heldout16k

(Until session 9 the set was "the 24 h plan's validation scores that data/piano16k did not
train on"; that depended on which split rule each build of data/piano16k had used, so a
rebuild could hold scores an earlier stage had trained on.)

The writer must leave one score on the training side, so one score's clips are not evaluated.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wavenet.corpus import NotePack, PianoSampler, piece_order, render_plan, render_planned  # noqa: E402
from wavenet.data import DatasetWriter  # noqa: E402

TRAINING_PLAN_HOURS = 24.0  # the largest plan any stage rendered (tools/gpu_train.py --hours 24)
TRAINING_PLAN_SEED = 1  # every stage's render seed


def never_rendered(pack: NotePack, plan_hours: float = TRAINING_PLAN_HOURS) -> list[int]:
    """Score indices outside the training plan, in its permutation order (a plan longer than the
    corpus renders every score: then nothing is left)."""
    planned = {index for index, _ in render_plan(pack, plan_hours, seed=TRAINING_PLAN_SEED)}
    return [index for index in piece_order(pack, TRAINING_PLAN_SEED) if index not in planned]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--pack", default="data/cache/notes.npz")
    parser.add_argument("--bank", default="data/cache/bank16k.npz")
    parser.add_argument("--hours", type=float, default=1.5, help="stop after this much audio")
    args = parser.parse_args()
    pack, sampler = NotePack.load(Path(args.pack)), PianoSampler(Path(args.bank))
    writer = DatasetWriter(Path(args.out), sampler.sample_rate, 10.0, 0.999, seed=0)
    seconds, scores = 0.0, 0
    for index in never_rendered(pack):
        if seconds >= args.hours * 3600:
            break
        name = pack.names[index]
        audio, _ = render_planned(pack, sampler, index, 0, seed=TRAINING_PLAN_SEED)
        if not writer.has(f"{name}__r0"):
            writer.add(f"{name}__r0", audio, group=name)
        seconds += len(audio) / sampler.sample_rate
        scores += 1
    summary = writer.finish(f"held-out evaluation renders: {scores} scores outside the {TRAINING_PLAN_HOURS:g} h "
                            f"seed-{TRAINING_PLAN_SEED} training plan, which no training stage rendered",
                            evaluation_only=True)
    print(json.dumps({k: v for k, v in summary.items() if k != "sources"}, indent=1))


if __name__ == "__main__":
    main()
