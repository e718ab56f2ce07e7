"""How far a reduced-precision training step's gradient is from the exact one, for given weights.

    python tools/gradient_precision.py checkpoints/piano-small --data data/piano16k --batches 6

For each batch it computes the float64 gradient (the reference), the float32 one, the one under
bfloat16 autocast (what `--precision bf16` trains with), and float32 gradients at the weights
rounded to bfloat16 and to TF32 (what the matrix products of those modes see). It prints the
cosine and norm ratio of each against the reference, for the gradient summed over the batches
so far: an error that averages out across batches is noise; one that does not is a bias, and
it steers a long fine-tuning stage somewhere other than down the loss.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from wavenet.bench import cpu_name  # noqa: E402
from wavenet.checkpoint import load_checkpoint  # noqa: E402
from wavenet.data import ClipSet  # noqa: E402
from wavenet.model import WaveNet  # noqa: E402
from wavenet.train import autocast, next_sample_loss  # noqa: E402

MANTISSA_BITS_DROPPED = {"bf16": 16, "tf32": 13}  # float32 keeps 23; bfloat16 keeps 7, TF32 10


def rounded(model: WaveNet, dropped_bits: int) -> WaveNet:
    """A copy whose float32 weights are rounded (to nearest, ties to even) to fewer mantissa bits."""
    copied = copy.deepcopy(model)
    with torch.no_grad():
        for parameter in copied.parameters():
            bits = parameter.view(torch.int32)
            odd = (bits >> dropped_bits) & 1
            bits = (bits + (1 << (dropped_bits - 1)) - 1 + odd) & ~((1 << dropped_bits) - 1)
            parameter.copy_(bits.view(torch.float32))
    return copied


def gradient(model: WaveNet, crops: torch.Tensor, bf16_autocast: bool = False) -> torch.Tensor:
    model.zero_grad()
    with autocast("bf16" if bf16_autocast else "float32", torch.device("cpu")):
        loss = next_sample_loss(model, crops, model.config.receptive_field)
    loss.backward()
    return torch.cat([p.grad.flatten().double() for p in model.parameters()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--data", type=Path, default=Path("data/piano16k"))
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--output-length", type=int, default=16000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    model, _ = load_checkpoint(args.checkpoint)
    model.train()
    exact = copy.deepcopy(model).double()
    at_rounded = {name: rounded(model, bits) for name, bits in MANTISSA_BITS_DROPPED.items()}
    crops_from = ClipSet.load(args.data, "train")
    generator = torch.Generator().manual_seed(args.seed)
    ways = ["float32", "bf16 autocast", "float32 at bf16-rounded weights", "float32 at TF32-rounded weights"]
    sums: dict[str, torch.Tensor] = {}
    print(f"{args.checkpoint} on {cpu_name()}, torch {torch.__version__}; "
          f"gradients summed over batches of {args.batch_size} x {args.output_length}, against float64")
    print("batches  " + "  ".join(f"{way:>33}" for way in ways))
    for batch in range(1, args.batches + 1):
        crops = crops_from.random_crops(args.batch_size, args.output_length + model.config.receptive_field, generator)
        this = {"float64": gradient(exact, crops), "float32": gradient(model, crops),
                "bf16 autocast": gradient(model, crops, bf16_autocast=True),
                "float32 at bf16-rounded weights": gradient(at_rounded["bf16"], crops),
                "float32 at TF32-rounded weights": gradient(at_rounded["tf32"], crops)}
        for way, value in this.items():
            sums[way] = sums.get(way, 0) + value
        reference = sums["float64"]
        cells = [f"cos {F.cosine_similarity(sums[way], reference, dim=0).item():.3f}, "
                 f"norm {(sums[way].norm() / reference.norm()).item():.2f}" for way in ways]
        print(f"{batch:>7}  " + "  ".join(f"{cell:>33}" for cell in cells), flush=True)


if __name__ == "__main__":
    main()
