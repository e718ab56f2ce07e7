"""Comparisons: one set of settings sampled by each of 2–4 checkpoints in turn, in a worker thread,
so that touching a control on the page neither stops nor loses it; Stop keeps what was sampled."""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from studio.live import Kept, orphan_check, session_connected
from wavenet.analysis import snr, spectral_flatness
from wavenet.model import WaveNet
from wavenet.sampler import GenerationSettings, stream


@dataclass
class Contender:
    """A loaded checkpoint in a comparison, with its prime (if any) at the model's rate."""
    name: str
    model: WaveNet
    facts: dict[str, str]
    prime: np.ndarray | None = None


@dataclass
class ComparedTake:
    """What one checkpoint sampled, with the measurements the Compare table shows."""
    name: str
    audio: np.ndarray  # [variations, samples], the prime included when there is one
    sample_rate: int
    facts: dict[str, str]
    settings: dict
    samples_per_second: float
    start_up_seconds: float
    snr: list[float]  # per variation, of the sampled part
    flatness: list[float]
    seam_seconds: float | None  # where the prime ends
    sampled_seconds: float  # of new audio
    stopped_early: bool


@dataclass
class Comparison:
    contenders: list[Contender]
    settings: GenerationSettings
    described: str  # the settings in words, shown above the results
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    cancel: threading.Event = field(default_factory=threading.Event)
    takes: list[ComparedTake] = field(default_factory=list)  # in the contenders' order
    errors: dict[str, str] = field(default_factory=dict)  # why a checkpoint failed, by name
    current: str = ""
    current_number: int = 0  # 1 for the first checkpoint
    current_seconds_left: float = float("nan")  # of the checkpoint sampling now
    fraction: float = 0.0  # of the whole comparison
    samples_per_second: float = 0.0
    finished: bool = False
    ended: float | None = None
    connected: Callable[[], bool] = lambda: True  # the browser session that asked for it
    kept: bool = False  # its results are on disk (see studio.comparison_view)

    @property
    def left_out(self) -> list[str]:
        """Checkpoints a Stop kept from sampling anything."""
        if not self.cancel.is_set():
            return []
        done = {take.name for take in self.takes} | set(self.errors)
        return [contender.name for contender in self.contenders if contender.name not in done]

    def _run(self, session_gone: Callable[[], bool]) -> None:
        try:
            for index, contender in enumerate(self.contenders):
                if self.cancel.is_set():
                    break
                self.current, self.current_number = contender.name, index + 1
                try:
                    take = self._sample(index, contender, session_gone)
                except Exception as error:  # noqa: BLE001 - reported on the page, never a traceback
                    self.errors[contender.name] = f"{type(error).__name__}: {error}"
                    continue
                if take is not None:
                    self.takes.append(take)
        finally:
            self.finished, self.ended = True, time.time()

    def _sample(self, index: int, contender: Contender, session_gone: Callable[[], bool]) -> ComparedTake | None:
        """The contender's take, or None when a Stop came before its first sample."""
        rate, prime = contender.model.config.sample_rate, contender.prime
        started, chunks, start_up, speed = time.perf_counter(), [], 0.0, 0.0
        for chunk in stream(contender.model, self.settings, prime, cancel=self.cancel):
            session_gone()
            chunks.append(chunk.audio)
            if chunk.total:
                if not speed:  # the time before sampling began (mostly loading the prime)
                    start_up = time.perf_counter() - started - chunk.done / chunk.samples_per_second
                speed = self.samples_per_second = chunk.samples_per_second
                self.fraction = (index + chunk.done / chunk.total) / len(self.contenders)
                self.current_seconds_left = (chunk.total - chunk.done) / speed
        audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((self.settings.variations, 0), np.float32)
        prime_samples = len(prime) if prime is not None else 0
        generated = audio[:, prime_samples:]
        if not generated.shape[1]:
            return None
        return ComparedTake(contender.name, audio, rate, contender.facts, self.settings.to_dict(), speed, start_up,
                            [snr(take) for take in generated], [spectral_flatness(take) for take in generated],
                            prime_samples / rate if prime is not None else None, generated.shape[1] / rate,
                            generated.shape[1] < round(self.settings.seconds * rate))


_comparisons: Kept[Comparison] = Kept()


def start_comparison(contenders: list[Contender], settings: GenerationSettings, described: str) -> Comparison:
    """Sample each contender in turn in a worker thread; it stops soon after its browser session has gone."""
    for contender in contenders:
        settings.check(contender.model.config.classes)
    comparison = Comparison(contenders, settings, described, connected=session_connected())
    _comparisons.add(comparison)
    session_gone = orphan_check(lambda: comparison.connected(), comparison.cancel)  # a reload may hand it on
    threading.Thread(target=comparison._run, args=(session_gone,), daemon=True,
                     name=f"compare-{comparison.id[:8]}").start()
    return comparison


def get_comparison(comparison_id: str) -> Comparison | None:
    return _comparisons.get(comparison_id)
