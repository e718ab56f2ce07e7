"""Live takes: generations that run in worker threads and outlive page reruns.

A take's thread only touches its own `LiveTake` (never `st.session_state`), so clicks on
other widgets do not disturb it; the Stop button sets its event. The audio route reads the
take's PCM chunks by index, so a reconnecting player can read them again. A take whose browser
session has gone (the tab was closed) stops after a short grace: no CPU is spent on a take nobody hears.
"""
from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from wavenet.audio import to_pcm16
from wavenet.model import WaveNet
from wavenet.sampler import GenerationSettings, stream

if TYPE_CHECKING:
    from studio.takes import Take

Work = TypeVar("Work")  # a take or comparison: an `id`, an `ended` time (None while it runs), a `connected` check
KEEP_SECONDS = 3600  # finished takes (and comparisons) stay readable this long
PLAYER_LEAD_SECONDS = 0.5  # the player's first lead (0.3 s) and the chunks' way to the browser
ORPHAN_GRACE_SECONDS = 5.0  # a session that reconnects within this keeps its take sampling


def also_connected(check: Callable[[], bool]) -> Callable[[], bool]:
    """`check`, or the session running this script: a take picked up by a reloaded page (or a second tab)
    goes on while either is there."""
    here = session_connected()
    return lambda: here() or check()


def session_connected() -> Callable[[], bool]:
    """A check, callable from any thread, of whether the browser session running this script is still
    connected. Pages of one session share its connection, so a visit to another page does not count as gone;
    outside a running server (AppTest) it always says yes."""
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    if not runtime.exists() or context is None:
        return lambda: True
    server, session_id = runtime.get_instance(), context.session_id
    return lambda: server.is_active_session(session_id)


@dataclass
class LiveTake:
    checkpoint: str
    settings: GenerationSettings
    sample_rate: int
    prime_samples: int = 0
    source: str = ""  # the clip a continuation carries on, by file name
    region: tuple[float, float] | None = None  # where its prime is in that clip (seconds)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    cancel: threading.Event = field(default_factory=threading.Event)
    chunks: list[np.ndarray] = field(default_factory=list)  # [variations, n] float32 each
    pcm: list[bytes] = field(default_factory=list)  # the first variation as int16 LE, for the player
    done_samples: int = 0
    total_samples: int = 0
    samples_per_second: float = 0.0
    finished: bool = False
    error: str | None = None
    started: float = field(default_factory=time.time)
    first_chunk_at: float | None = None
    ended: float | None = None
    connected: Callable[[], bool] = lambda: True  # the browser session that asked for the take
    orphaned: bool = False  # stopped because that session went away
    kept: Take | None = None  # the finished take as the take lists hold it: one for every tab (studio.live_view)

    @property
    def stopped_early(self) -> bool:
        return self.finished and self.cancel.is_set() and self.done_samples < self.total_samples

    @property
    def seconds_left(self) -> float:
        if self.samples_per_second <= 0:
            return float("nan")
        return (self.total_samples - self.done_samples) / self.samples_per_second

    def playback_ends(self) -> float:
        """About when (time.time()) the browser player will have played everything sampled: it plays
        the chunks back to back from the first one's arrival, or each late chunk on arrival."""
        if not self.chunks:
            return self.ended or time.time()
        duration = sum(chunk.shape[1] for chunk in self.chunks) / self.sample_rate
        last = self.chunks[-1].shape[1] / self.sample_rate
        return max(self.first_chunk_at + duration, (self.ended or time.time()) + last) + PLAYER_LEAD_SECONDS

    def audio(self) -> np.ndarray:
        """Everything sampled so far (prime included when asked for): float32 [variations, n]."""
        if not self.chunks:
            return np.zeros((self.settings.variations, 0), np.float32)
        return np.concatenate(self.chunks, axis=1)

    def _run(self, model: WaveNet, prime: np.ndarray | None) -> None:
        session_gone = orphan_check(lambda: self.connected(), self.cancel)  # read when called: tests swap it
        try:
            for chunk in stream(model, self.settings, prime, cancel=self.cancel):
                self.orphaned = self.orphaned or session_gone()
                self.first_chunk_at = self.first_chunk_at or time.time()
                self.chunks.append(chunk.audio)
                self.pcm.append(to_pcm16(chunk.audio[0]).astype("<i2").tobytes())
                if chunk.total:
                    self.done_samples, self.total_samples = chunk.done, chunk.total
                    self.samples_per_second = chunk.samples_per_second
        except Exception as error:  # noqa: BLE001 - reported on the page, never a traceback
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.finished, self.ended = True, time.time()


def orphan_check(connected: Callable[[], bool], cancel: threading.Event) -> Callable[[], bool]:
    """A check for a worker to call between chunks: once the browser session has been gone for the
    grace period, it sets `cancel` and says so (True)."""
    gone_since: float | None = None

    def gone() -> bool:
        nonlocal gone_since
        if connected():
            gone_since = None
            return False
        gone_since = gone_since or time.time()
        if time.time() - gone_since < ORPHAN_GRACE_SECONDS:
            return False
        cancel.set()
        return True

    return gone


class Kept(Generic[Work]):
    """Background work by id, for any thread: each item stays readable for KEEP_SECONDS after it
    ended (its `ended` time), so its session can still collect it; older ones go as new ones come."""

    def __init__(self) -> None:
        self._items: dict[str, Work] = {}
        self._lock = threading.Lock()

    def add(self, item: Work) -> None:
        with self._lock:
            now = time.time()
            for key in [k for k, kept in self._items.items() if kept.ended and now - kept.ended > KEEP_SECONDS]:
                del self._items[key]
            self._items[item.id] = item

    def get(self, item_id: str) -> Work | None:
        with self._lock:
            return self._items.get(item_id)


_takes: Kept[LiveTake] = Kept()


def start_take(model: WaveNet, checkpoint: str, settings: GenerationSettings,
               prime: np.ndarray | None = None, source: str = "",
               region: tuple[float, float] | None = None) -> LiveTake:
    """Start sampling in a worker thread for the session running this script, and register the
    take for the audio route."""
    settings.check(model.config.classes)
    take = LiveTake(checkpoint, settings, model.config.sample_rate,
                    prime_samples=len(prime) if prime is not None and settings.include_prime else 0, source=source,
                    region=region, connected=session_connected())
    take.total_samples = int(round(settings.seconds * model.config.sample_rate))
    _takes.add(take)
    threading.Thread(target=take._run, args=(model, prime), daemon=True, name=f"take-{take.id[:8]}").start()
    return take


def get_take(take_id: str) -> LiveTake | None:
    return _takes.get(take_id)
