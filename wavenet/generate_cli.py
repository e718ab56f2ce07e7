"""`python -m wavenet generate`: a take (or K variations) to WAV/FLAC with a JSON sidecar."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from wavenet.audio import AudioError, load_audio, save_audio
from wavenet.checkpoint import load_checkpoint, resolve
from wavenet.sampler import GenerationSettings, fastest_backend, stream
from wavenet.train import pick_device


def variation_paths(out: Path, count: int) -> list[Path]:
    if count == 1:
        return [out]
    return [out.with_name(f"{out.stem}_v{i + 1}{out.suffix}") for i in range(count)]


def run_generate(args) -> None:
    from tqdm import tqdm

    out = Path(args.out)
    if out.suffix.lower() not in (".wav", ".flac"):
        raise AudioError(f"{out.name}: --out must end in .wav or .flac")
    model, info = load_checkpoint(args.checkpoint, pick_device(args.device))
    rate = model.config.sample_rate
    prime = None
    if args.prime:
        prime = load_audio(args.prime, rate, max_seconds=3600)
        if args.prime_seconds:
            prime = prime[-max(1, int(args.prime_seconds * rate)):]
    settings = GenerationSettings(seconds=args.seconds, temperature=args.temperature, min_p=args.min_p,
                                  seed=args.seed, first_sample=args.first_sample, variations=args.variations,
                                  include_prime=args.include_prime)
    settings.check(model.config.classes, args.max_seconds)
    pieces = []
    with tqdm(total=int(args.seconds * rate), unit="sample", unit_scale=True, desc="sampling") as bar:
        for chunk in stream(model, settings, prime):
            pieces.append(chunk.audio)
            bar.update(chunk.audio.shape[1] if chunk.total else 0)
            if chunk.total:
                bar.set_postfix_str(f"{chunk.samples_per_second / rate:.2f}× real time")
    take = np.concatenate(pieces, axis=1)
    sidecar = {"checkpoint": str(resolve(args.checkpoint)), "settings": settings.to_dict(),
               "backend": fastest_backend(model, settings.variations),
               "prime": args.prime, "prime_seconds": args.prime_seconds, "sample_rate": rate,
               "model": info["model"]}
    for path, audio in zip(variation_paths(out, settings.variations), take):
        save_audio(path, audio, rate)
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(sidecar, indent=1))
        print(f"wrote {path} ({len(audio) / rate:.2f} s)")
