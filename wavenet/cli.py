"""`python -m wavenet prepare|corpus|train|generate|eval|bench|info|grow|import-seed|serve`.

Every command answers bad input with one clear line on stderr and a non-zero exit.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from wavenet.checkpoint import DEFAULT_CHECKPOINT
from wavenet.model import PAPER_WIDTHS, PRESETS
from wavenet.augment import AUGMENTATIONS
from wavenet.train import PRECISIONS


class UsageError(ValueError):
    """Impossible option values, reported as one line."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line instead of the whole usage."""

    def error(self, message: str):
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def number(kind, minimum: float, inclusive: bool):
    """An argparse type: a finite number above (or at) `minimum`."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"must be {'at least' if inclusive else 'above'} {minimum:g}, got {text}")
        return value
    return parse


def positive(kind):
    return number(kind, 0, inclusive=False)


def non_negative(kind):
    return number(kind, 0, inclusive=True)


def add_width_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--residual-channels", type=positive(int))
    parser.add_argument("--dilation-channels", type=positive(int))
    parser.add_argument("--skip-channels", type=positive(int))
    parser.add_argument("--paper-widths", action="store_true",
                        help="the reference code's widths: residual = dilation = 64, skip = 1024")


def widths(args) -> dict:
    chosen = dict(PAPER_WIDTHS) if args.paper_widths else {}
    for name in ("residual_channels", "dilation_channels", "skip_channels"):
        if getattr(args, name) is not None:
            chosen[name] = getattr(args, name)
    return chosen


# ---------------------------------------------------------------- commands


def cmd_prepare(args) -> None:
    from wavenet.data import prepare

    manifest = prepare(Path(args.src), Path(args.out), args.sample_rate, args.clip_seconds, args.val_fraction,
                       args.seed, args.max_file_seconds)
    print(f"{args.out}: {manifest['train_clips']} train clips ({manifest['train_hours']:.3f} h), "
          f"{manifest['val_clips']} val clips ({manifest['val_hours']:.3f} h) from {len(manifest['sources'])} "
          f"sources; {len(manifest['skipped'])} skipped")


def cmd_corpus(args) -> None:
    from wavenet.corpus import build_corpus

    summary = build_corpus(Path(args.out), args.hours, args.sample_rate, args.workers, args.seed,
                           Path(args.cache), args.max_scores, texture=args.texture)
    print(json.dumps(summary, indent=1))


def kept_on_resume(args, name: str, default: str | float) -> str | float:
    """A setting given on the command line, or on --resume the run's own (a bf16 run stays bf16,
    an accumulating run keeps its step size)."""
    given = getattr(args, name)
    if given is not None:
        return given
    record = Path(args.run) / "run.json"
    if args.resume and record.exists():
        return json.loads(record.read_text())["settings"].get(name, default)
    return default


def cmd_train(args) -> None:
    from wavenet.model import WaveNetConfig
    from wavenet.train import Trainer, TrainSettings

    config = WaveNetConfig.preset(args.preset, sample_rate=args.sample_rate, **widths(args))
    settings = TrainSettings(batch_size=kept_on_resume(args, "batch_size", 0),
                             accumulate=kept_on_resume(args, "accumulate", 1),
                             output_length=kept_on_resume(args, "output_length", 0), lr=args.lr,
                             warmup_steps=args.warmup_steps, grad_clip=args.grad_clip, max_steps=args.max_steps,
                             epochs=args.epochs, time_budget=args.time_budget, val_every=args.val_every,
                             checkpoint_every=args.checkpoint_every, sample_seconds=args.sample_seconds,
                             seed=args.seed, compile=args.compile,
                             precision=kept_on_resume(args, "precision", PRECISIONS[0]),
                             augment=kept_on_resume(args, "augment", AUGMENTATIONS[0]),
                             augment_share=kept_on_resume(args, "augment_share", TrainSettings.augment_share),
                             history_noise=kept_on_resume(args, "history_noise", 0.0),
                             init_from=kept_on_resume(args, "init_from", ""),
                             keep_optimizer=bool(kept_on_resume(args, "keep_optimizer", False)),
                             keep_checkpoints=bool(kept_on_resume(args, "keep_checkpoints", False)))
    trainer = Trainer(config, Path(args.data), Path(args.run), settings, device=args.device, resume=args.resume)
    summary = trainer.train()
    if trainer.is_main:
        print(json.dumps(summary, indent=1))


def cmd_generate(args) -> None:
    from wavenet.generate_cli import run_generate

    run_generate(args)


def cmd_eval(args) -> None:
    from wavenet.analysis import bits_per_sample
    from wavenet.audio import load_audio
    from wavenet.checkpoint import load_checkpoint

    from wavenet.train import pick_device

    model, _ = load_checkpoint(args.checkpoint, pick_device(args.device))
    for path in args.audio:
        audio = load_audio(path, model.config.sample_rate, max_seconds=args.max_seconds)
        nats, bits = bits_per_sample(model, audio)
        print(f"{path}: {nats:.4f} nats/sample, {bits:.4f} bits/sample ({len(audio)} samples)")


def cmd_info(args) -> None:
    from wavenet.checkpoint import load_checkpoint, resolve

    model, info = load_checkpoint(args.checkpoint)
    config = model.config
    print(f"checkpoint      {resolve(args.checkpoint)}")
    print(f"architecture    {config.layers} layers × {config.stacks} stacks, residual {config.residual_channels}, "
          f"dilation {config.dilation_channels}, skip {config.skip_channels}, {config.classes} μ-law classes")
    print(f"parameters      {model.parameter_count():,}")
    print(f"receptive field {config.receptive_field} samples = {config.receptive_field_ms:.1f} ms at {config.sample_rate} Hz")
    for key, value in info.get("training", {}).items():
        print(f"{key:<15} {value}")
    for key in ("data", "created", "licence"):
        if info.get(key):
            print(f"{key:<15} {info[key]}")


def cmd_grow(args) -> None:
    from wavenet.checkpoint import grow_checkpoint, load_checkpoint

    folder = grow_checkpoint(args.checkpoint, args.preset, args.out, args.replace)
    config = load_checkpoint(folder)[0].config
    print(f"wrote {folder}: {config.layers} layers × {config.stacks} stacks, receptive field "
          f"{config.receptive_field_ms:.0f} ms; train it with `wavenet train --init-from {folder}`")


def cmd_import_seed(args) -> None:
    from wavenet.checkpoint import import_reference

    folder = import_reference(args.pth, args.out, args.layers, args.stacks, args.sample_rate)
    print(f"wrote {folder}")


def cmd_serve(args) -> None:
    from wavenet.serve import Limits, serve

    serve(args.checkpoint, args.host, args.port, Limits(max_seconds=args.max_seconds, max_variations=args.max_variations,
                                                        max_upload_mb=args.max_upload_mb, concurrency=args.concurrency))


def cmd_bench(args) -> None:
    from wavenet.bench import run_benchmarks

    run_benchmarks(args)


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m wavenet", description="WaveNet for solo piano")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("prepare", help="cut a folder of recordings into a training dataset")
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--sample-rate", type=positive(int), default=16000)
    p.add_argument("--clip-seconds", type=positive(float), default=5.0)
    p.add_argument("--val-fraction", type=non_negative(float), default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-file-seconds", type=positive(float), default=4 * 3600)
    p.set_defaults(func=cmd_prepare)

    p = commands.add_parser("corpus", help="render a solo-piano corpus from music21 scores and piano samples")
    p.add_argument("out")
    p.add_argument("--hours", type=positive(float), default=2.0)
    p.add_argument("--sample-rate", type=positive(int), default=16000)
    p.add_argument("--workers", type=positive(int), default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default="data/cache", help="where MIDI exports and piano samples are kept")
    p.add_argument("--max-scores", type=positive(int), help="export at most this many scores (tests)")
    p.add_argument("--texture", choices=("full", "melody"), default="full",
                   help="full: every voice, sustain pedal; melody: the top line only, no pedal (sparse, clear notes)")
    p.set_defaults(func=cmd_corpus)

    p = commands.add_parser("train", help="train (or resume) a model on a prepared dataset")
    p.add_argument("--preset", choices=sorted(PRESETS), default="small")
    add_width_options(p)
    p.add_argument("--data", required=True)
    p.add_argument("--run", "--run-dir", dest="run", required=True,
                   help="run folder (under torchrun write --run-dir: torchrun takes --run for its own --run-path)")
    p.add_argument("--sample-rate", type=positive(int), default=16000)
    p.add_argument("--batch-size", type=positive(int), default=None,
                   help="windows per batch; default: about 80,000 positions per batch (one window at least); "
                        "--resume keeps the run's own")
    p.add_argument("--accumulate", type=positive(int), default=None, metavar="N",
                   help="add up the gradients of N batches before each optimizer step: the step of an N times "
                        "larger batch (say, a GPU's) in a CPU's memory and cache. Default 1; --resume keeps the "
                        "run's own")
    p.add_argument("--output-length", type=positive(int), default=None,
                   help="samples each window predicts after its receptive field of context; default: as many as "
                        "the receptive field holds, 4,000 at least, fewer where the recordings are shorter "
                        "(small: 7 x 5,115; medium and large: one window); --resume keeps the run's own")
    p.add_argument("--lr", type=positive(float), default=1e-3)
    p.add_argument("--warmup-steps", type=positive(int), default=200)
    p.add_argument("--grad-clip", type=positive(float), default=1.0)
    p.add_argument("--max-steps", type=non_negative(int), default=0)
    p.add_argument("--epochs", type=non_negative(float), default=0.0)
    p.add_argument("--time-budget", type=non_negative(float), default=0.0, help="seconds of training")
    p.add_argument("--val-every", type=positive(int), default=500)
    p.add_argument("--checkpoint-every", type=positive(int), default=1000)
    p.add_argument("--sample-seconds", type=non_negative(float), default=1.0,
                   help="length of the audio sample logged at each checkpoint (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="bf16: bfloat16 autocast for the forward and backward pass (faster where the hardware "
                        "has bfloat16 arithmetic: recent GPUs, CPUs with AVX512-BF16 or AMX; see bench train), but its "
                        "gradient is taken at bf16-rounded weights: fine-tune trained weights in float32. "
                        "Default float32; --resume keeps the run's own")
    p.add_argument("--augment", choices=AUGMENTATIONS, default=None,
                   help="recording: run a share of the training crops (--augment-share) through a random recording chain (room, EQ, "
                        "low-pass, noise, level) so the model also knows real recordings, not only dry renders. "
                        "Default none; --resume keeps the run's own")
    p.add_argument("--augment-share", type=float, default=None, metavar="SHARE",
                   help="with --augment recording: the share of training crops that go through a chain (0 < SHARE "
                        "<= 1; default 0.5, which made piano-small's own takes noisier); --resume keeps the run's own")
    p.add_argument("--history-noise", type=non_negative(float), default=None, metavar="CLASSES",
                   help="add Gaussian noise (standard deviation up to this many μ-law classes, drawn per crop) "
                        "to the history the model sees but not to its targets, so it learns to continue its own "
                        "imperfect samples (sampling at temperature 1 adds about 1.5; 2 made piano-small's takes "
                        "fade to silence). Default 0; --resume keeps the run's own")
    p.add_argument("--resume", action="store_true", help="continue the run's last checkpoint")
    p.add_argument("--init-from", help="start from these weights (a fresh optimizer with warm-up); --resume "
                                       "remembers them for the run's cards")
    p.add_argument("--keep-optimizer", action="store_const", const=True, default=None,
                   help="with --init-from: continue the Adam moments saved beside those weights (a run's last/, a "
                        "GPU lease's folder, or a checkpoint shipped in this workspace) instead of a fresh Adam")
    p.add_argument("--keep-checkpoints", action="store_const", const=True, default=None,
                   help="also keep the weights of every checkpoint (--checkpoint-every) in the run's steps/ "
                        "folder, to choose among them by their takes; --resume keeps the run's own")
    p.set_defaults(func=cmd_train)

    p = commands.add_parser("generate", help="sample audio from a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--seconds", type=positive(float), default=4.0)
    p.add_argument("--temperature", type=non_negative(float), default=1.0)
    p.add_argument("--min-p", type=non_negative(float), default=0.0,
                   help="never draw a sample less likely than this share of the likeliest one (below 1; "
                        "0 = off): less hiss between notes, but sounds fade sooner")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--first-sample", type=int)
    p.add_argument("--prime")
    p.add_argument("--prime-seconds", type=positive(float))
    p.add_argument("--include-prime", action="store_true")
    p.add_argument("--variations", type=positive(int), default=1)
    p.add_argument("--max-seconds", type=positive(float), default=3600.0, help="refuse longer takes")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_generate)

    p = commands.add_parser("eval", help="teacher-forced bits/sample of a checkpoint on audio files")
    p.add_argument("checkpoint")
    p.add_argument("audio", nargs="+")
    p.add_argument("--max-seconds", type=positive(float), default=600.0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_eval)

    p = commands.add_parser("info", help="architecture and training summary of a checkpoint")
    p.add_argument("checkpoint")
    p.set_defaults(func=cmd_info)

    p = commands.add_parser("grow", help="a deeper checkpoint that starts out computing what a smaller one does")
    p.add_argument("checkpoint", help="the smaller checkpoint (name or folder)")
    p.add_argument("preset", choices=sorted(PRESETS), help="the deeper shape (layers × stacks)")
    p.add_argument("out", help="the new checkpoint's folder")
    p.add_argument("--replace", action="store_true", help="overwrite an existing checkpoint folder at OUT")
    p.set_defaults(func=cmd_grow)

    p = commands.add_parser("import-seed", help="convert the reference code's .pth checkpoint")
    p.add_argument("pth")
    p.add_argument("out")
    p.add_argument("--layers", type=positive(int), default=13)
    p.add_argument("--stacks", type=positive(int), default=5)
    p.add_argument("--sample-rate", type=positive(int), default=16000)
    p.set_defaults(func=cmd_import_seed)

    p = commands.add_parser("serve", help="a Gradio app and HTTP API (/generate, /continue), streamed")
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=positive(int), default=7860)
    p.add_argument("--max-seconds", type=positive(float), default=60.0)
    p.add_argument("--max-variations", type=positive(int), default=4)
    p.add_argument("--max-upload-mb", type=positive(float), default=20.0)
    p.add_argument("--concurrency", type=positive(int), default=2, help="generations served at once")
    p.set_defaults(func=cmd_serve)

    p = commands.add_parser("bench", help="training and generation benchmarks (prints numbers, writes JSON)")
    p.add_argument("what", choices=("train", "generate", "all"), nargs="?", default="all")
    p.add_argument("--seconds", type=positive(float), default=3.0, help="time per measurement")
    p.add_argument("--json", default="bench/results.json")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    from wavenet.audio import AudioError
    from wavenet.checkpoint import CheckpointError
    from wavenet.data import DataError
    from wavenet.train import TrainingError

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (AudioError, CheckpointError, DataError, TrainingError, UsageError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # unwritable output folders, full disks, missing devices
        print(f"error: {error.strerror or error}{f': {error.filename}' if error.filename else ''}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0
