"""One lent-GPU session, turnkey: render the corpus there, train for a wall-clock budget.

Inputs travel small: the note pack (MIDI notes of the music21 scores) and the 16 kHz
Salamander sample bank, both built here by `python -m wavenet corpus` into data/cache/.
The device has no registries: this uses only torch, numpy, safetensors, tqdm and (if
present) tensorboard, all in its image.
Checkpoints are copied to $OUT as the run goes, flat and few (the device returns at most
8 files), so even a run cut short leaves weights behind.

    python tools/gpu_train.py --budget 420 --out "$OUT" [--init-from checkpoints/piano-small]

Carry data/cache/notes.npz, data/cache/bank16k.npz and data/heldout16k/manifest.json: the
evaluation set's scores (tools/heldout_set.py) are left out of the render, so model cards'
held-out figures stay held out however often the corpus is rendered again.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from wavenet.augment import AUGMENTATIONS  # noqa: E402
from wavenet.corpus import render_dataset  # noqa: E402
from wavenet.model import WaveNetConfig  # noqa: E402
from wavenet.train import PRECISIONS, Trainer, TrainSettings  # noqa: E402


def export(run: Path, out: Path) -> None:
    """Copy the newest checkpoint and logs into $OUT (flat, at most 8 files)."""
    out.mkdir(parents=True, exist_ok=True)
    last = run / "last"
    for name in ("model.safetensors", "config.json", "trainer.pt"):
        if (last / name).exists():
            shutil.copy2(last / name, out / f"tmp_{name}")
            os.replace(out / f"tmp_{name}", out / name)
    events = sorted((run / "tb").glob("events.out.tfevents.*"))
    if events:
        shutil.copy2(events[-1], out / "tb_events.tfevents")


class ExportingTrainer(Trainer):
    def save(self, loss: float, val: float | None) -> None:
        super().save(loss, val)
        if self.is_main:
            export(self.run, self.out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=420, help="seconds of training")
    parser.add_argument("--hours", type=float, default=24, help="hours of audio to render")
    parser.add_argument("--out", default=os.environ.get("OUT", "/tmp/gpu_out"))
    parser.add_argument("--pack", default="data/cache/notes.npz")
    parser.add_argument("--bank", default="data/cache/bank16k.npz")
    parser.add_argument("--work", default="/tmp/gpu_work")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--residual", type=int, default=32)
    parser.add_argument("--skip", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--output-length", type=int, default=16000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--compile", default="auto")
    parser.add_argument("--precision", choices=PRECISIONS, default=PRECISIONS[0])
    parser.add_argument("--augment", choices=AUGMENTATIONS, default=AUGMENTATIONS[0])
    parser.add_argument("--augment-share", type=float, default=TrainSettings.augment_share,
                        help="with --augment recording: the share of crops that go through a chain")
    parser.add_argument("--history-noise", type=float, default=0.0,
                        help="μ-law classes of noise on the history the model sees, not on its targets")
    parser.add_argument("--init-from", default="")
    parser.add_argument("--keep-optimizer", action="store_true",
                        help="with --init-from: continue the Adam moments saved there (an earlier call's $OUT)")
    parser.add_argument("--texture", choices=("full", "melody"), default="full")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--hold-out", default="data/heldout16k/manifest.json",
                        help="the evaluation set's manifest.json (tools/heldout_set.py; carry it to the device): "
                             "its scores are never rendered. '' trains on every score")
    args = parser.parse_args()

    if args.keep_optimizer and not (Path(args.init_from) / "trainer.pt").exists():
        sys.exit(f"error: --keep-optimizer needs {Path(args.init_from) / 'trainer.pt'}: carry it, or drop the option")
    started = time.time()
    print(f"torch {torch.__version__}, cuda {torch.cuda.is_available()}"
          f" {torch.cuda.get_device_name() if torch.cuda.is_available() else ''}", flush=True)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    held_out = frozenset()
    if args.hold_out:
        if not Path(args.hold_out).exists():
            sys.exit(f"error: {args.hold_out} not found: carry the evaluation set's manifest (or pass --hold-out '')")
        sources = json.loads(Path(args.hold_out).read_text())["sources"].values()
        # every score in it, also the one its writer had to put on the training side
        held_out = frozenset(source["group"] for source in sources)
        print(f"leaving out {len(held_out)} held-out scores (the render is that much shorter than --hours)", flush=True)
    manifest = render_dataset(Path(args.pack), Path(args.bank), work / "data", args.hours, args.workers, seed=1,
                              progress=False, texture=args.texture, exclude_scores=held_out)
    print(f"rendered {manifest['train_hours']} h train / {manifest['val_hours']} h val in "
          f"{time.time() - started:.0f} s", flush=True)
    config = WaveNetConfig.preset(args.preset, residual_channels=args.residual, dilation_channels=args.residual,
                                  skip_channels=args.skip)
    settings = TrainSettings(batch_size=args.batch_size, output_length=args.output_length, lr=args.lr,
                             time_budget=args.budget, val_every=500, checkpoint_every=args.checkpoint_every,
                             sample_seconds=0.0, compile=args.compile, precision=args.precision,
                             augment=args.augment, augment_share=args.augment_share, history_noise=args.history_noise,
                             init_from=args.init_from, keep_optimizer=args.keep_optimizer)
    trainer = ExportingTrainer(config, work / "data", work / "run", settings, progress=False)
    trainer.out = Path(args.out)
    summary = trainer.train()
    export(work / "run", Path(args.out))
    print(summary, flush=True)
    print(f"total {time.time() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
