"""`python -m wavenet serve`: a Gradio app and API for programs, streamed.

It lives in the library (not at the top level) because it is a front end of the CLI and
adds no model logic: loading, sampling, limits and analysis all come from `wavenet`. Two
named endpoints, `/generate` and `/continue`, take the same parameters and limits as
`python -m wavenet generate`; each streams audio chunks while sampling and ends with the
whole take as a WAV file and its CQT image.
"""
from __future__ import annotations

import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wavenet.audio import AudioError, load_audio, save_audio, to_pcm16
from wavenet.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, list_checkpoints, load_checkpoint
from wavenet.sampler import GenerationSettings, stream

KEEP_OUTPUT_SECONDS = 3600  # finished takes stay downloadable this long


@dataclass(frozen=True)
class Limits:
    max_seconds: float = 60.0
    max_variations: int = 4
    max_upload_mb: float = 20.0
    max_prime_seconds: float = 30.0
    concurrency: int = 2


class Models:
    """Loaded checkpoints shared by all requests (generation state is per request)."""

    def __init__(self):
        self._models: dict[str, tuple] = {}
        self._lock = threading.Lock()

    def get(self, name: str):
        with self._lock:
            if name not in self._models:
                self._models[name] = load_checkpoint(name)
            return self._models[name]


def remove_old_outputs(folder: Path) -> None:
    """Delete takes and images older than an hour, so a long-running server does not fill its disk."""
    cutoff = time.time() - KEEP_OUTPUT_SECONDS
    for path in folder.iterdir():
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


def build_app(default_checkpoint: str = DEFAULT_CHECKPOINT, limits: Limits = Limits()):
    import gradio as gr

    from wavenet.analysis import cqt_png

    models = Models()
    choices = list(dict.fromkeys([default_checkpoint, *list_checkpoints()]))
    output_dir = Path(tempfile.mkdtemp(prefix="wavenet-serve-"))

    def checked_settings(model, seconds, temperature, seed, first_sample, variations, min_p, include_prime=False):
        if not 0 < float(seconds) <= limits.max_seconds:
            raise gr.Error(f"seconds must be in (0, {limits.max_seconds:g}]")
        if not 1 <= int(variations) <= limits.max_variations:
            raise gr.Error(f"variations must be 1..{limits.max_variations}")
        settings = GenerationSettings(seconds=float(seconds), temperature=float(temperature),
                                      min_p=float(min_p or 0.0), seed=int(seed),
                                      first_sample=None if first_sample in (None, -1) else int(first_sample),
                                      variations=int(variations), include_prime=include_prime)
        try:
            settings.check(model.config.classes)
        except ValueError as error:
            raise gr.Error(str(error)) from None
        return settings

    def model_for(name):
        name = name or default_checkpoint
        if name not in choices:  # only the served checkpoints, never an arbitrary server path
            raise gr.Error(f"no checkpoint {name!r} is served here (served: {', '.join(choices)})")
        try:
            return models.get(name)
        except CheckpointError as error:
            raise gr.Error(str(error)) from None

    def run(name, settings, prime):
        """Stream the first variation's chunks, then the whole take (WAV) and its CQT (PNG)."""
        model, _ = model_for(name)
        rate = model.config.sample_rate
        chunks = []
        for chunk in stream(model, settings, prime):
            chunks.append(chunk.audio)
            yield (rate, to_pcm16(chunk.audio[0])), gr.skip(), gr.skip()
        take = np.concatenate(chunks, axis=1)
        remove_old_outputs(output_dir)
        min_p = f"_minp{settings.min_p:g}" if settings.min_p else ""
        path = output_dir / (f"{Path(str(name)).name}_seed{settings.seed}_temp{settings.temperature:g}{min_p}"
                             f"_{uuid.uuid4().hex[:8]}.wav")
        save_audio(path, take[0], rate)
        image = output_dir / (path.stem + "_cqt.png")
        image.write_bytes(cqt_png(take[0], rate))
        yield gr.skip(), str(path), str(image)

    def generate(checkpoint, seconds, temperature, seed, first_sample, variations, min_p=0.0):
        model, _ = model_for(checkpoint)
        settings = checked_settings(model, seconds, temperature, seed, first_sample, variations, min_p)
        yield from run(checkpoint, settings, None)

    def continue_clip(checkpoint, clip, prime_start, prime_end, seconds, temperature, seed, variations, min_p=0.0):
        model, _ = model_for(checkpoint)
        if not clip:
            raise gr.Error("upload a piano clip (WAV, FLAC, OGG or MP3) to continue")
        if Path(clip).stat().st_size > limits.max_upload_mb * 1024 * 1024:
            raise gr.Error(f"the clip is larger than {limits.max_upload_mb:g} MB")
        try:
            audio = load_audio(clip, model.config.sample_rate, max_seconds=600)
        except AudioError as error:
            raise gr.Error(str(error)) from None
        rate = model.config.sample_rate
        start, end = float(prime_start), float(prime_end)
        if not 0 <= start < end or end - start > limits.max_prime_seconds:
            raise gr.Error(f"the prime region must have 0 ≤ start < end and last at most {limits.max_prime_seconds:g} s")
        prime = audio[int(start * rate): int(end * rate)]
        if len(prime) < rate // 10:
            raise gr.Error("the prime region holds less than 0.1 s of the clip")
        settings = checked_settings(model, seconds, temperature, seed, -1, variations, min_p, include_prime=True)
        yield from run(checkpoint, settings, prime)

    def sampling_controls() -> list:
        """seconds, temperature, seed: the same widgets on both tabs."""
        return [gr.Slider(0.5, limits.max_seconds, 4.0, step=0.5, label="seconds"),
                gr.Slider(0.0, 1.5, 1.0, step=0.05, label="temperature (0 = greedy)"),
                gr.Number(0, precision=0, label="seed")]

    def tab(label: str, inputs_before: list, fn, api_name: str, with_first_sample: bool) -> None:
        """One tab: its inputs, then the live audio, the take and its CQT; Stop cancels the generation."""
        with gr.Row():
            with gr.Column():
                checkpoint = gr.Dropdown(choices, value=choices[0], label="checkpoint")
                before = [build() for build in inputs_before]
                controls = sampling_controls()
                if with_first_sample:
                    controls.append(gr.Number(-1, precision=0, label="first sample (0..255, -1 = random)"))
                controls.append(gr.Slider(1, limits.max_variations, 1, step=1, label="variations"))
                # Last, so programs written before it existed keep their argument order.
                controls.append(gr.Slider(0.0, 0.3, 0.0, step=0.01, label="min-p (0 = off)"))
                with gr.Row():
                    go = gr.Button(label, variant="primary")
                    stop = gr.Button("Stop")
            with gr.Column():
                outputs = [gr.Audio(streaming=True, autoplay=True, label="live", interactive=False),
                           gr.File(label="take (WAV)"), gr.Image(label="CQT", type="filepath")]
        event = go.click(fn, [checkpoint, *before, *controls], outputs, api_name=api_name)
        stop.click(None, cancels=[event], api_name=False)

    with gr.Blocks(title="WaveNet Piano — API") as app:
        gr.Markdown("# 🎹 WaveNet Piano\nSample solo piano audio with WaveNet checkpoints; audio plays while it "
                    "is sampled. Programs: see the *Use via API* link below (`/generate`, `/continue`).")
        with gr.Tab("Generate"):
            tab("Generate", [], generate, "generate", with_first_sample=True)
        with gr.Tab("Continue"):
            tab("Continue", [lambda: gr.File(label=f"piano clip (≤ {limits.max_upload_mb:g} MB)", type="filepath",
                                             file_types=[".wav", ".flac", ".ogg", ".mp3"]),
                             lambda: gr.Number(0.0, label="prime start (s)"),
                             lambda: gr.Number(3.0, label="prime end (s)")],
                continue_clip, "continue", with_first_sample=False)
    app.queue(default_concurrency_limit=limits.concurrency)
    return app


def provide_ffmpeg() -> None:
    """Gradio encodes streamed audio with an `ffmpeg` on PATH; where the system has none, use the
    static binary that the imageio-ffmpeg wheel carries (so `pip install` is all it takes)."""
    import os
    import shutil

    if shutil.which("ffmpeg"):
        return
    import imageio_ffmpeg

    folder = Path(tempfile.gettempdir()) / f"wavenet-ffmpeg-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    link = folder / "ffmpeg"
    if not link.exists():
        link.symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def serve(checkpoint: str, host: str, port: int, limits: Limits) -> None:
    load_checkpoint(checkpoint)  # fail early, with a clear message, on a bad checkpoint
    provide_ffmpeg()
    app = build_app(checkpoint, limits)
    app.launch(server_name=host, server_port=port, show_error=True,
               max_file_size=f"{limits.max_upload_mb:g}mb")
