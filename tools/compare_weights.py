"""Score several weights on the same held-out audio: clean renders, the same renders through
recording chains, and the real piano clip; then how they fare on their own samples. For
deciding between training runs.

    python tools/compare_weights.py runs/a/last runs/b/last checkpoints/piano-small --takes runs/takes

"Recorded" clips are the held-out clips through one fixed set of random recording chains
(wavenet.augment, seed 0): a broader test of real-recording conditions than the single real clip.
"Noisy history" scores the clean clips while the model sees them with Gaussian noise of one
μ-law class (fixed seed): about what sampling at temperature 1 feeds a model, so a model that
is lost there will drift into noise when it generates.
With --takes, each model also makes 4 unique takes and 2 continuations of the real clip
(T=1.0, 4 s each, min-p as --min-p, seeds 1-4 and 1-2 moved by --seed-offset); the table gives
their median spectral flatness (lower: more tonal) and attacks per second (struck notes;
wavenet.analysis.attack_rate), and the folder gets each take's WAV and CQT image to look at and listen to. It also continues each
held-out render after 3 s of it (T=1.0) and gives the median flatness of the first second
the model adds, beside that of the second that really follows ("held-out continuation"):
renders are what the model trained on, so this shows how fast its own sampling dissolves notes
it was given, without the real clip's recording conditions in the way.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tools.make_card import REAL_CLIP, validation_rows  # noqa: E402
from wavenet import mulaw  # noqa: E402
from wavenet.analysis import (attack_rate, bits_per_sample, continuation_flatness, cqt_png,  # noqa: E402
                              following_flatness, spectral_flatness)
from wavenet.audio import load_audio, save_audio  # noqa: E402
from wavenet.augment import RecordingChain, shifted_by_noise  # noqa: E402
from wavenet.checkpoint import load_checkpoint  # noqa: E402
from wavenet.model import WaveNet  # noqa: E402
from wavenet.sampler import GenerationSettings, generate  # noqa: E402

HISTORY_NOISE_CLASSES = 1.0
UNIQUE_TAKES = 4
CONTINUATIONS = 2
TAKE_SECONDS = 4.0
PRIME_SECONDS = 3.0


def held_out_audio(folder: Path, clips: int, seconds: float,
                   second_set: bool = False) -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """`seconds` of each clip, clean and through a recording chain (after the chain's run-up), and their rate."""
    rows, rate = validation_rows(folder, clips, second_set)
    chain = RecordingChain(rate, probability=1.0)
    rows = rows[:, : chain.head + int(seconds * rate)]
    recorded = chain.apply(rows, torch.Generator().manual_seed(0))
    clean = [mulaw.decode(row[chain.head:].numpy()) for row in rows]
    return clean, [mulaw.decode(row.numpy()) for row in recorded], rate


@torch.no_grad()
def noisy_history_bits(model: WaveNet, clips: list[np.ndarray]) -> float:
    """Mean bits/sample of the clean clips, predicted from a history with Gaussian noise in μ-law classes."""
    generator = torch.Generator().manual_seed(0)
    total = []
    for clip in clips:
        clean = torch.from_numpy(mulaw.encode(clip).astype(np.int64))
        noisy = shifted_by_noise(clean[None], torch.tensor([HISTORY_NOISE_CLASSES]), generator)
        logits = model(noisy[:, :-1])[0]
        total.append(F.cross_entropy(logits.T, clean[1:]).item() / np.log(2))
    return float(np.mean(total))


def takes(model: WaveNet, real: np.ndarray, folder: Path | None, name: str,
          min_p: float = 0.0, seed_offset: int = 0) -> tuple[float, float, float, float]:
    """Medians over unique takes and over continuations of the real clip (after the prime): spectral
    flatness of each, then attacks per second of each."""
    rate = model.config.sample_rate
    prime = real[: int(PRIME_SECONDS * rate)]
    unique, continued = [], []  # (flatness, attacks per second) of each take
    for seed in range(seed_offset + 1, seed_offset + 1 + UNIQUE_TAKES):
        audio = generate(model, GenerationSettings(seconds=TAKE_SECONDS, temperature=1.0, min_p=min_p, seed=seed))[0]
        unique.append((spectral_flatness(audio), attack_rate(audio, rate)))
        if folder:
            save_audio(folder / f"{name}_unique_{seed}.wav", audio, rate)
            (folder / f"{name}_unique_{seed}.png").write_bytes(cqt_png(audio, rate, f"{name}: unique, seed {seed}"))
    for seed in range(seed_offset + 1, seed_offset + 1 + CONTINUATIONS):
        audio = generate(model, GenerationSettings(seconds=TAKE_SECONDS, temperature=1.0, min_p=min_p, seed=seed,
                                                   include_prime=True), prime)[0]
        continuation = audio[len(prime):]
        continued.append((spectral_flatness(continuation), attack_rate(continuation, rate)))
        if folder:
            save_audio(folder / f"{name}_continued_{seed}.wav", audio, rate)
            (folder / f"{name}_continued_{seed}.png").write_bytes(
                cqt_png(audio, rate, f"{name}: {PRIME_SECONDS:g} s of the real clip, then seed {seed}"))
    (unique_flatness, unique_attacks), (continued_flatness, continued_attacks) = (
        np.median(np.array(measured), axis=0) for measured in (unique, continued))
    return float(unique_flatness), float(continued_flatness), float(unique_attacks), float(continued_attacks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("weights", nargs="+", help="checkpoint folders (a run's last/ or best/, or checkpoints/NAME)")
    parser.add_argument("--val", default="data/heldout16k")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--second-set", action="store_true",
                        help="score other clips, none of them in the usual set (for a second look at a run)")
    parser.add_argument("--seconds", type=float, default=4.0, help="scored per clip (at most 9)")
    parser.add_argument("--takes", type=Path, help="also generate takes, writing their WAVs and CQTs here")
    parser.add_argument("--min-p", type=float, default=0.0, help="the takes' min-p (0 = plain sampling)")
    parser.add_argument("--seed-offset", type=int, default=0,
                        help="added to every take's seed, for a fresh look at weights whose takes were seen")
    args = parser.parse_args()
    torch.set_num_threads(1)
    clean, recorded, data_rate = held_out_audio(Path(args.val), args.clips, args.seconds, args.second_set)
    if args.takes and args.seconds < PRIME_SECONDS + 1:
        parser.error(f"--takes continues held-out clips after {PRIME_SECONDS:g} s: --seconds must be at least "
                     f"{PRIME_SECONDS + 1:g}")
    real = {}  # the real clip at each model's rate, loaded once
    if args.takes:
        args.takes.mkdir(parents=True, exist_ok=True)
    print(f"{'weights':40} {'samples':>9} {'clean':>6} {'recorded':>8} {'real':>6} {'noisy history':>13}  (bits/sample)"
          + ("  flatness: unique, continued  attacks/s: unique, continued  held-out continuation: flatness of"
             f" its 1st second (real: {following_flatness(clean, data_rate, PRIME_SECONDS):.4f})" if args.takes else ""))
    for index, folder in enumerate(args.weights):
        model, info = load_checkpoint(folder)
        rate = model.config.sample_rate
        real.setdefault(rate, load_audio(REAL_CLIP, rate)[: 20 * rate])
        scores = [np.mean([bits_per_sample(model, clip)[1] for clip in clips]) for clips in (clean, recorded)]
        seen = info.get("training", {}).get("samples_seen", 0)
        line = (f"{folder:40} {seen:9.3g} {scores[0]:6.3f} {scores[1]:8.3f} {bits_per_sample(model, real[rate])[1]:6.3f}"
                f" {noisy_history_bits(model, clean):13.3f}")
        if args.takes:
            line += "  {:.4f} {:.4f}  {:.2f} {:.2f}".format(*takes(model, real[rate], args.takes, f"m{index}",
                                                                   args.min_p, args.seed_offset))
            if rate == data_rate:
                line += f"  {continuation_flatness(model, clean, PRIME_SECONDS, args.min_p, args.seed_offset):.4f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
