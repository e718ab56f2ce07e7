"""Choosing a piano clip: an upload (checked, with clear messages) or the shipped example."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from wavenet.audio import AudioError, load_audio

EXAMPLE = Path(__file__).resolve().parent.parent / "assets" / "fats_waller_aint_misbehavin_45s.wav"
EXAMPLE_LABEL = "Example: Fats Waller, “Ain't Misbehavin'” (45 s, public domain)"
MAX_UPLOAD_MB = 20
MAX_CLIP_SECONDS = 600
MIN_CLIP_SECONDS = 0.2


def clip_picker(page: str, sample_rate: int) -> tuple[np.ndarray | None, str]:
    """The clip as float audio at the model's rate (None with a message shown when unusable)."""
    source = st.radio("Clip", [EXAMPLE_LABEL, "Upload a piano clip"], key=f"{page}_clip_source")
    if source == EXAMPLE_LABEL:
        return load_audio(EXAMPLE, sample_rate), EXAMPLE.name
    upload = st.file_uploader(f"WAV, FLAC, OGG or MP3 · up to {MAX_UPLOAD_MB} MB and {MAX_CLIP_SECONDS // 60} minutes",
                              type=["wav", "flac", "ogg", "mp3"], key=f"{page}_upload")
    if upload is None:
        st.info("Choose a file to continue.")
        return None, ""
    if upload.size > MAX_UPLOAD_MB * 1024 * 1024:
        st.error(f"{upload.name} is {upload.size / 1e6:.0f} MB; the limit is {MAX_UPLOAD_MB} MB.")
        return None, ""
    try:
        clip = load_audio(upload.getvalue(), sample_rate, max_seconds=MAX_CLIP_SECONDS)
    except AudioError as error:
        st.error(f"{upload.name}: {str(error).replace('the upload', 'this file')}")
        return None, ""
    if len(clip) < MIN_CLIP_SECONDS * sample_rate:
        st.error(f"{upload.name} is shorter than {MIN_CLIP_SECONDS} s: too little to continue.")
        return None, ""
    return clip, upload.name


def prime_region(page: str, clip: np.ndarray, sample_rate: int) -> np.ndarray:
    """The part of the clip the model hears before it continues (start/end sliders)."""
    length = len(clip) / sample_rate
    default_end = min(length, 3.0)
    start, end = st.slider("Prime region (seconds)", 0.0, float(round(length, 2)),
                           (0.0, float(round(default_end, 2))), 0.1, key=f"{page}_region")
    if end - start < 0.1:
        st.warning("The prime region is shorter than 0.1 s; widen it.")
        end = min(length, start + 0.1)
    return clip[int(start * sample_rate): int(end * sample_rate)]
