"""Render the evaluation set no shipped checkpoint has trained on.

piano-small was trained on a 24 h render (seed 1) and fine-tuned, like piano-medium and
piano-large, on the 8 h render in data/piano16k (seed 1). Each set chose its validation scores
among its own scores, so most of data/piano16k's validation scores were training scores of the
24 h set. The scores held out from both are the 24 h set's validation scores minus
data/piano16k's training scores; this renders exactly those performances (the same render
seeds as the 24 h set) into a prepared dataset whose validation split is the evaluation set.

    python tools/heldout_set.py data/heldout16k

The writer must leave one score on the training side: the cards of session 2 were measured on a
build with 516 validation clips; since splits became stable per score, a rebuild leaves a
different score out and has 517 (the same audio, clip for clip).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from wavenet.corpus import NotePack, PianoSampler, render_plan, render_planned  # noqa: E402
from wavenet.data import DatasetWriter  # noqa: E402


def earlier_split(groups: list[str], val_fraction: float, seed: int) -> set[str]:
    """The validation scores as the 24 h set chose them, before splits became stable per score
    (wavenet.data.split_groups now): a seeded permutation of the sorted names, the first tenth."""
    unique = sorted(set(groups))
    count = min(len(unique) - 1, max(1, round(val_fraction * len(unique))))
    return {unique[i] for i in np.random.default_rng(seed).permutation(len(unique))[:count]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--pack", default="data/cache/notes.npz")
    parser.add_argument("--bank", default="data/cache/bank16k.npz")
    parser.add_argument("--fine-tune-data", default="data/piano16k")
    args = parser.parse_args()
    pack, sampler = NotePack.load(Path(args.pack)), PianoSampler(Path(args.bank))
    plan = render_plan(pack, 24.0, seed=1)
    held_out = earlier_split([pack.names[i] for i, _ in plan], 0.1, 1)
    manifest = json.loads((Path(args.fine_tune_data) / "manifest.json").read_text())
    held_out -= {s["group"] for s in manifest["sources"].values() if s.get("split") != "val"}
    writer = DatasetWriter(Path(args.out), sampler.sample_rate, 10.0, 0.999, seed=0)
    for index, round_number in plan:
        name = pack.names[index]
        if name not in held_out or writer.has(f"{name}__r{round_number}"):
            continue
        audio, _ = render_planned(pack, sampler, index, round_number, seed=1)  # as the 24 h set rendered it
        writer.add(f"{name}__r{round_number}", audio, group=name)
    summary = writer.finish(f"held-out evaluation renders: {len(held_out)} scores no shipped checkpoint trained on")
    print(json.dumps({k: v for k, v in summary.items() if k != "sources"}, indent=1))


if __name__ == "__main__":
    main()
