"""Comparisons: one set of settings sampled by each of 2–4 checkpoints in turn, in a worker thread,
so that touching a control on the page neither stops nor loses it; Stop keeps what was sampled."""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from studio.live import orphan_check, session_connected
from wavenet.analysis import snr, spectral_flatness
from wavenet.model import WaveNet
from wavenet.sampler import GenerationSettings, stream


@dataclass
class Contender:
    """A checkpoint in a comparison, loaded by the page, with its prime at the model's rate."""
    name: str
    model: WaveNet
    facts: dict[str, str]
    prime: np.ndarray | None = None


@dataclass
class Comparison:
    contenders: list[Contender]
    settings: GenerationSettings
    described: str  # the settings in words, shown above the results
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    cancel: threading.Event = field(default_factory=threading.Event)
    results: list[dict] = field(default_factory=list)  # one per contender sampled, in order
    current: str = ""
    fraction: float = 0.0  # of the whole comparison
    samples_per_second: float = 0.0
    finished: bool = False
    error: str | None = None

    def _run(self, session_gone) -> None:
        try:
            for index, contender in enumerate(self.contenders):
                if self.cancel.is_set():
                    break
                self.current = contender.name
                self.results.append(self._sample(index, contender, session_gone))
        except Exception as error:  # noqa: BLE001 - reported on the page, never a traceback
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.finished = True

    def _sample(self, index: int, contender: Contender, session_gone) -> dict:
        rate, prime = contender.model.config.sample_rate, contender.prime
        started, chunks, start_up, speed = time.perf_counter(), [], None, 0.0
        for chunk in stream(contender.model, self.settings, prime, cancel=self.cancel):
            session_gone()
            chunks.append(chunk.audio)
            if chunk.total:
                if start_up is None:  # the time before sampling began (mostly loading the prime)
                    start_up = time.perf_counter() - started - chunk.done / chunk.samples_per_second
                speed = self.samples_per_second = chunk.samples_per_second
                self.fraction = (index + chunk.done / chunk.total) / len(self.contenders)
        audio = np.concatenate(chunks, axis=1)  # [variations, samples]
        generated = audio[:, len(prime) if prime is not None else 0:]
        sampled = generated.shape[1]
        return {"name": contender.name, "audio": audio, "rate": rate, "facts": contender.facts,
                "settings": self.settings.to_dict(), "samples_per_s": speed, "start_up": start_up,
                "snr": [snr(take) for take in generated] if sampled else [],
                "flatness": [spectral_flatness(take) for take in generated] if sampled else [],
                "seam": len(prime) / rate if prime is not None else None,
                "stopped early": sampled < round(self.settings.seconds * rate)}


_comparisons: dict[str, Comparison] = {}
_lock = threading.Lock()


def start_comparison(contenders: list[Contender], settings: GenerationSettings, described: str) -> Comparison:
    """Sample each contender in turn in a worker thread; it stops soon after its browser session has gone."""
    for contender in contenders:
        settings.check(contender.model.config.classes)
    comparison = Comparison(contenders, settings, described)
    with _lock:
        for key in [k for k, c in _comparisons.items() if c.finished]:
            del _comparisons[key]  # a finished comparison's results live in its session
        _comparisons[comparison.id] = comparison
    session_gone = orphan_check(session_connected(), comparison.cancel)
    threading.Thread(target=comparison._run, args=(session_gone,), daemon=True,
                     name=f"compare-{comparison.id[:8]}").start()
    return comparison


def get_comparison(comparison_id: str) -> Comparison | None:
    with _lock:
        return _comparisons.get(comparison_id)
