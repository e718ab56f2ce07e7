"""Score several weights on the same held-out audio: clean renders, the same renders through
recording chains, and the real piano clip. For deciding between training runs.

    python tools/compare_weights.py runs/a/last runs/b/last checkpoints/piano-small

"Recorded" clips are the held-out clips through one fixed set of random recording chains
(wavenet.augment, seed 0): a broader test of real-recording conditions than the single real clip.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tools.make_card import REAL_CLIP, validation_rows  # noqa: E402
from wavenet import mulaw  # noqa: E402
from wavenet.analysis import bits_per_sample  # noqa: E402
from wavenet.audio import load_audio  # noqa: E402
from wavenet.augment import RecordingChain  # noqa: E402
from wavenet.checkpoint import load_checkpoint  # noqa: E402


def held_out_audio(folder: Path, clips: int, seconds: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`seconds` of each clip, clean and through a recording chain (after the chain's run-up)."""
    rows, rate = validation_rows(folder, clips)
    chain = RecordingChain(rate, probability=1.0)
    rows = rows[:, : chain.head + int(seconds * rate)]
    recorded = chain.apply(rows, torch.Generator().manual_seed(0))
    clean = [mulaw.decode(row[chain.head:].numpy()) for row in rows]
    return clean, [mulaw.decode(row.numpy()) for row in recorded]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights", nargs="+", help="checkpoint folders (a run's last/ or best/, or checkpoints/NAME)")
    parser.add_argument("--val", default="data/heldout16k")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=4.0, help="scored per clip (at most 9)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clean, recorded = held_out_audio(Path(args.val), args.clips, args.seconds)
    real = {}  # the real clip at each model's rate, loaded once
    print(f"{'weights':44} {'samples':>9} {'clean':>7} {'recorded':>9} {'real clip':>10}  (bits/sample)")
    for folder in args.weights:
        model, info = load_checkpoint(folder)
        rate = model.config.sample_rate
        real.setdefault(rate, load_audio(REAL_CLIP, rate)[: 20 * rate])
        scores = [np.mean([bits_per_sample(model, clip)[1] for clip in clips]) for clips in (clean, recorded)]
        seen = info.get("training", {}).get("samples_seen", 0)
        print(f"{folder:44} {seen:9.3g} {scores[0]:7.3f} {scores[1]:9.3f} {bits_per_sample(model, real[rate])[1]:10.3f}",
              flush=True)


if __name__ == "__main__":
    main()
