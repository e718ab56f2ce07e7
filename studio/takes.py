"""The session's takes: each with its settings, to replay, download, delete or redo."""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import streamlit as st

from studio.clips import restore_prime
from studio.controls import apply_settings
from studio.models import display_name
from studio.plots import cqt_figure, waveform
from studio.visitor import VisitorStore, saved_fields, visitor_store
from wavenet.audio import audio_bytes


@dataclass(eq=False)  # takes are compared by identity (their audio is an array)
class Take:
    page: str
    checkpoint: str
    settings: dict
    audio: np.ndarray  # [variations, n]
    sample_rate: int
    seam_seconds: float | None = None
    samples_per_second: float = 0.0
    stopped_early: bool = False
    source: str = ""  # the clip a continuation carries on, by file name
    region: tuple[float, float] | None = None  # where its prime is in that clip (seconds)
    created: float = field(default_factory=time.time)
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # its name on disk

    @classmethod
    def from_saved(cls, settings: dict, audio: np.ndarray) -> Take:
        """The take `saved_fields` and its audio describe; ValueError or TypeError if they do not make one."""
        if audio.ndim != 2:
            raise ValueError("a take's audio is [variations, samples]")
        region = settings.get("region")
        return cls(**{**settings, "audio": audio, "created": float(settings["created"]),
                      "region": (float(region[0]), float(region[1])) if region else None})

    def length_label(self) -> str:
        """'2.0 s + 3.0 s prime · 2 variations · stopped early', as it applies."""
        prime = self.seam_seconds or 0.0
        new = self.audio.shape[1] / self.sample_rate - prime
        parts = [f"{new:.1f} s" + (f" + {prime:.1f} s prime" if prime else "")]
        if self.source:
            where = f" ({self.region[0]:.1f}–{self.region[1]:.1f} s)" if self.region else ""
            parts.append(f"continuing {self.source}{where}")
        if self.audio.shape[0] > 1:
            parts.append(f"{self.audio.shape[0]} variations")
        if self.stopped_early:
            parts.append("stopped early")
        return " · ".join(parts)

    def filename(self, variation: int, extension: str) -> str:
        return take_filename(self.checkpoint, self.settings, variation if self.audio.shape[0] > 1 else None,
                             extension, self.source, self.stopped_early)


def sampling_label(settings: dict) -> str:
    """'seed 7 · temperature 0.9 · min-p 0.05' (min-p only where it was on)."""
    min_p = f" · min-p {settings['min_p']:g}" if settings["min_p"] else ""
    return f"seed {settings['seed']} · temperature {settings['temperature']:g}{min_p}"


def take_filename(checkpoint: str, settings: dict, variation: int | None, extension: str, source: str = "",
                  stopped: bool = False) -> str:
    """'piano-small_from-myclip_seed7_temp0.9_minp0.05_stopped_v2.wav': checkpoint, clip, seed,
    temperature, min-p (where it was on), stopped early (so it does not overwrite the full take's
    download), variation."""
    suffix = ("_stopped" if stopped else "") + (f"_v{variation + 1}" if variation is not None else "")
    clip = f"_from-{safe_name(Path(source).stem)}" if source else ""
    min_p = f"_minp{settings['min_p']:g}" if settings["min_p"] else ""
    sampling = f"_seed{settings['seed']}_temp{settings['temperature']:g}{min_p}"
    return f"{safe_name(checkpoint, 80)}{clip}{sampling}{suffix}.{extension}"


def safe_name(text: str, limit: int = 40) -> str:
    """`text` as a file-name part: letters, digits, '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:limit] or "clip"


def session_takes() -> list[Take]:
    """This visitor's takes, newest first: read from disk on their first run in this browser session."""
    if "takes" not in st.session_state:
        st.session_state["takes"] = sorted(_saved_takes(visitor_store()), key=lambda take: take.created, reverse=True)
    return st.session_state["takes"]


def _saved_takes(store: VisitorStore) -> list[Take]:
    """The store's takes that still make a Take (one written by another version may not)."""
    takes = []
    try:
        for key, settings, audio in store.items():
            try:
                takes.append(Take.from_saved({**settings, "key": key}, audio))
            except (TypeError, ValueError, KeyError, IndexError):
                continue
    except OSError as error:
        st.toast(f"Your earlier takes could not be read ({error.strerror or error}).")
    return takes


def add_take(take: Take) -> None:
    session_takes().insert(0, take)
    st.session_state.pop(_deleted_key(take.page), None)  # a new take ends the offer to undo a delete
    _keep_on_disk(take)


def _keep_on_disk(take: Take) -> None:
    try:
        visitor_store().put(take.key, saved_fields(take), take.audio)
    except OSError as error:
        st.toast(f"This take could not be kept on disk ({error.strerror or error}): it is here until you "
                 "reload the page, so download it if you want to keep it.")


def delete_take(take: Take) -> None:
    """Remove a take from the list and the disk, held in memory until the page's next take so that
    Undo can bring it back."""
    session_takes().remove(take)
    st.session_state[_deleted_key(take.page)] = take
    try:
        visitor_store().remove(take.key)
    except OSError as error:
        st.toast(f"This take could not be deleted from disk ({error.strerror or error}): it comes back on reload.")


def undo_delete(page: str) -> None:
    """Put the page's last deleted take back where it was (by time made), on disk too."""
    take = st.session_state.pop(_deleted_key(page), None)
    if take is None:
        return
    takes = session_takes()
    takes.insert(sum(other.created > take.created for other in takes), take)
    _keep_on_disk(take)


def _deleted_key(page: str) -> str:
    return f"{page}_deleted_take"


def show_take(take: Take, index: int, plots: bool = True) -> None:
    """Audio, downloads and plots of one take (its settings are in the title above it); without
    `plots`, a switch to show them."""
    if take.samples_per_second:
        each = " per variation" if take.audio.shape[0] > 1 else ""
        st.caption(f"Sampled at {take.samples_per_second:,.0f} samples/s{each} "
                   f"({take.samples_per_second / take.sample_rate:.2f}× real time)")
    for variation, audio in enumerate(take.audio):
        if take.audio.shape[0] > 1:
            st.caption(f"Variation {variation + 1}")
        wav = audio_bytes(audio, take.sample_rate)
        st.audio(wav, format="audio/wav")
        row = st.container(horizontal=True)
        row.download_button("⬇ WAV", wav, take.filename(variation, "wav"),
                             "audio/wav", key=f"wav_{index}_{variation}_{take.key}")
        row.download_button("⬇ FLAC", audio_bytes(audio, take.sample_rate, "FLAC"), take.filename(variation, "flac"),
                              "audio/flac", key=f"flac_{index}_{variation}_{take.key}")
    if not plots:
        plots = st.toggle("Show the waveform and CQT", key=f"plots_{take.key}")
    if plots and take.audio.shape[1]:
        shown = 0
        if take.audio.shape[0] > 1:
            shown = st.radio("Plots of", range(take.audio.shape[0]), format_func=lambda v: f"variation {v + 1}",
                             horizontal=True, key=f"plotted_{take.key}")
        wave_tab, cqt_tab = st.tabs(["Waveform", "CQT"])
        wave_tab.plotly_chart(waveform(take.audio[shown], take.sample_rate, take.seam_seconds),
                              key=f"wave_{index}_{take.key}")
        cqt_tab.plotly_chart(cqt_figure(take.audio[shown], take.sample_rate, take.seam_seconds), theme=None,
                             key=f"cqt_{index}_{take.key}")


def take_list(page: str) -> None:
    """Earlier takes of this page: replay, download, delete, same settings again."""
    takes = [t for t in session_takes() if t.page == page]
    deleted = st.session_state.get(_deleted_key(page))
    if not takes and deleted is None:
        return
    st.subheader("Your takes")
    if deleted is not None:
        row = st.container(horizontal=True, vertical_alignment="center")
        row.caption(f"Deleted: {take_title(deleted)}")
        row.button("Undo delete", icon=":material/undo:", key=f"{page}_undo_delete", on_click=undo_delete,
                   args=(page,))
    for index, take in enumerate(takes):
        with st.expander(take_title(take), expanded=index == 0):
            show_take(take, index, plots=index == 0)
            row = st.container(horizontal=True)
            row.button("Delete", icon=":material/delete:", key=f"delete_{take.key}", on_click=delete_take,
                       args=(take,), help="Undo brings it back until your next take")
            row.button("↺ Same settings again", key=f"again_{take.key}", on_click=same_settings_again,
                         args=(take,), help="Puts this take's settings (and its prime) back into the controls")


def take_title(take: Take) -> str:
    """'piano-small · seed 7 · temperature 1 · 4.0 s · 28 Nov 09:31:02': enough to tell two takes apart."""
    made = time.strftime("%d %b %H:%M:%S", time.localtime(take.created))
    return f"{display_name(take.checkpoint)} · {sampling_label(take.settings)} · {take.length_label()} · {made}"


def same_settings_again(take: Take) -> None:
    """Put a take's settings, checkpoint, clip and prime region back into its page's controls."""
    apply_settings(take.page, take.settings, take.checkpoint)
    said = f"Back in the controls: this take's settings and seed, on {display_name(take.checkpoint)}"
    if not restore_prime(take.page, take.source, take.region):
        said += f". Its clip, {take.source}, is no longer uploaded: upload it again to continue it the same way"
    elif take.region:
        said += f", and its prime, {take.region[0]:.1f}–{take.region[1]:.1f} s"
    st.toast(said + ". *New seed for every take* is off: Generate repeats this take.")
