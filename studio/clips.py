"""Choosing a piano clip: an upload (checked, with clear messages) or the shipped example."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import streamlit as st

from studio.plots import waveform
from studio.visitor import visitor_store
from wavenet.audio import AudioError, Clip, read_clip, sound_starts

EXAMPLE = Path(__file__).resolve().parent.parent / "assets" / "fats_waller_aint_misbehavin_45s.wav"
EXAMPLE_LABEL = "Example: Fats Waller, “Ain't Misbehavin'” (45 s, public domain)"
UPLOAD_LABEL = "Upload a piano clip"
UNIQUE, SEEDED = "Unique", "Seeded from a clip"
MAX_UPLOAD_MB = 20
MAX_CLIP_SECONDS = 600
MIN_CLIP_SECONDS = 0.2


@st.cache_resource(max_entries=4, show_spinner="Reading the clip…")
def decoded(source: Path | bytes, sample_rate: int) -> Clip:
    """A clip decoded and resampled once, not on every rerun of the page (read-only: it is shared)."""
    clip = read_clip(source, sample_rate, max_seconds=MAX_CLIP_SECONDS)
    clip.audio.flags.writeable = False
    return clip


def clip_picker(page: str, sample_rate: int) -> tuple[np.ndarray | None, str]:
    """The clip as float audio at the model's rate (None with a message shown when unusable).

    A usable upload is kept in the session, so it is still there after a visit to another page
    (the file box itself comes back empty)."""
    source = st.radio("Clip", [EXAMPLE_LABEL, UPLOAD_LABEL], key=f"{page}_clip_source",
                      persist_state="session")
    if source == EXAMPLE_LABEL:
        return decoded(EXAMPLE, sample_rate).audio, EXAMPLE.name
    # The server takes files above the studio's limit (.streamlit/config.toml), so one a little too big
    # gets this page's clear message rather than an error chip; the drop zone's own line would state
    # the server's limit, so the label says it all and that line is hidden.
    st.html('<style>[data-testid="stFileUploaderDropzoneInstructions"] { display: none; }</style>')
    upload = st.file_uploader(f"A piano clip: WAV, FLAC, OGG or MP3, up to {MAX_UPLOAD_MB} MB and "
                              f"{MAX_CLIP_SECONDS // 60} minutes", type=["wav", "flac", "ogg", "mp3"],
                              key=f"{page}_upload")
    if upload is None:
        if (earlier := uploaded_earlier(page)) is None:
            st.info("Choose a file to continue.")
            return None, ""
        name, data = earlier
        st.caption(f"Using {name}, uploaded earlier; choose another file to replace it.")
    else:
        name, data = upload.name, None
        if upload.size > MAX_UPLOAD_MB * 1024 * 1024:
            st.error(f"{name} is {upload.size / 1e6:.0f} MB; the limit is {MAX_UPLOAD_MB} MB.")
            return None, ""
        data = upload.getvalue()
    try:
        clip = decoded(data, sample_rate)
    except AudioError as error:
        st.error(f"{name}: {str(error).replace('the upload', 'this file')}")
        return None, ""
    if len(clip.audio) < MIN_CLIP_SECONDS * sample_rate:
        st.error(f"{name} is shorter than {MIN_CLIP_SECONDS} s: too little to continue.")
        return None, ""
    if clip.channels > 1:
        channels = "is stereo" if clip.channels == 2 else f"has {clip.channels} channels"
        st.caption(f"{name} {channels}, mixed to one: the model hears mono.")
    if upload is not None and uploaded_earlier(page) != (name, data):
        _keep_upload(page, name, data)
    return clip.audio, name


def uploaded_earlier(page: str) -> tuple[str, bytes] | None:
    """(file name, bytes) of the page's last usable upload: kept in the session, and on disk for a reload."""
    kept = f"{page}_uploaded"
    if kept not in st.session_state:
        try:
            st.session_state[kept] = visitor_store().kept_upload(page)
        except OSError:
            st.session_state[kept] = None
    return st.session_state[kept]


def _keep_upload(page: str, name: str, data: bytes) -> None:
    st.session_state[f"{page}_uploaded"] = (name, data)
    try:
        visitor_store().keep_upload(page, name, data)
    except OSError:
        pass  # it is kept in the session all the same; only a reload would need it again


def lead_in_seconds(clip: np.ndarray, sample_rate: int) -> float:
    """Where a prime taken from the clip starts by default: its sound's start, rounded down to the
    prime slider's 0.1 s steps (not into the recording's silent lead-in)."""
    return math.floor(sound_starts(clip, sample_rate) * 10) / 10


def generation_mode(page: str) -> bool:
    """Unique or seeded from a clip (True)."""
    mode = st.radio("Mode", [UNIQUE, SEEDED], horizontal=True, key=f"{page}_mode", persist_state="session",
                    help="Unique starts from a single sample; seeded continues a piano clip.")
    return mode == SEEDED


def restore_prime(page: str, source: str, region: tuple[float, float] | None) -> bool:
    """Choose a take's clip and prime region again ("same settings again"); False when that clip is
    no longer at hand (an upload since replaced). A take without a prime puts a mode choice back to unique."""
    if f"{page}_mode" in st.session_state:
        st.session_state[f"{page}_mode"] = SEEDED if region else UNIQUE
    if region is None:
        return True
    if source == EXAMPLE.name:
        st.session_state[f"{page}_clip_source"] = EXAMPLE_LABEL
    elif (uploaded_earlier(page) or ("",))[0] == source:
        st.session_state[f"{page}_clip_source"] = UPLOAD_LABEL
    else:
        return False
    st.session_state[f"{page}_region"] = region
    st.session_state[f"{page}_region_clip"] = source
    return True


def prime_region(page: str, clip: np.ndarray, sample_rate: int,
                 clip_name: str) -> tuple[np.ndarray, tuple[float, float]]:
    """The part of the clip the model hears before it continues (start/end sliders), and where it is
    in the clip (seconds). Each clip gets its own first region; the chosen one is kept while the clip is."""
    length = float(round(len(clip) / sample_rate, 2))
    key = f"{page}_region"
    if key in st.session_state and st.session_state.get(f"{page}_region_clip") == clip_name:
        start, end = st.session_state[key]
    else:  # a first prime starts where the sound does
        start = lead_in_seconds(clip, sample_rate)
        end = start + 3.0
    st.session_state[key] = (min(start, length), min(end, length))
    st.session_state[f"{page}_region_clip"] = clip_name
    start, end = st.slider("Prime region (seconds)", 0.0, length, step=0.1, key=key, persist_state="session")
    if end - start < 0.1:
        st.warning("The prime region is shorter than 0.1 s; widen it.")
        start = max(0.0, min(start, length - 0.1))
        end = min(length, start + 0.1)
    region = clip[int(start * sample_rate): int(end * sample_rate)]
    st.plotly_chart(waveform(clip, sample_rate, height=130, region=(start, end)), key=f"{page}_clip_waveform",
                    config={"displayModeBar": False})
    st.audio(region, sample_rate=sample_rate)  # what the model will hear before it carries on
    return region, (start, end)
