"""The sidebar's checkpoint picker, with the facts a musician or tinkerer wants to see."""
from __future__ import annotations

import streamlit as st

from studio.models import checkpoint_names, device, display_name, facts, load, picker_label
from studio.takes import session_takes
from wavenet.checkpoint import DEFAULT_CHECKPOINT, CheckpointError
from wavenet.model import WaveNet


def checkpoint_picker() -> tuple[str, WaveNet, dict]:
    """The chosen checkpoint, loaded; stops the page with a message when none can be used."""
    names = checkpoint_names()
    if not names:
        st.warning("No checkpoints in `checkpoints/`. Train one with `python -m wavenet train`.")
        st.stop()
    if st.session_state.get("checkpoint") not in names:  # first visit, or its run folder is gone
        st.session_state["checkpoint"] = DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT in names else names[0]
    with st.sidebar:
        name = st.selectbox("Checkpoint", names, key="checkpoint", persist_state="session", format_func=picker_label,
                            help="A larger model is not a better one until it has trained as long: compare the "
                                 "audio seen in training, the validation bits/sample (lower is better) and what "
                                 "its takes sound like, below.")
    try:
        model, info = load(name)
    except CheckpointError as error:
        st.sidebar.error(str(error))
        st.warning(f"{display_name(name)} cannot be loaded (the sidebar says why): pick another checkpoint there.")
        st.stop()
    with st.sidebar:
        for label, value in facts(model, info).items():
            st.caption(f"**{label}**: {value}")
        st.caption(f"**device**: {device().upper()}")
        last = next((take for take in session_takes() if take.checkpoint == name and take.samples_per_second), None)
        if last:
            ratio = last.samples_per_second / model.config.sample_rate
            slow = " (below 1×: live playback pauses now and then)" if ratio < 1 else ""
            st.caption(f"**your last take here**: {last.samples_per_second:,.0f} samples/s "
                       f"({ratio:.2f}× real time){slow}")
    return name, model, info
