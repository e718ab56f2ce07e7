"""The generation controls shared by the Generate, Continue and Compare pages."""
from __future__ import annotations

import random

import streamlit as st

from wavenet.sampler import GenerationSettings

MAX_SECONDS = 60.0


def _new_seed(key: str) -> None:
    st.session_state[key] = random.randint(0, 2**31 - 1)


def _roll_seed(page: str) -> None:
    """A seed rolled with *New seed* is meant for the next take, so it is not replaced by a fresh one.
    (Typing a seed does not untick "new seed for every take": the box's change callback also fires
    when the browser echoes a value the studio set a moment before, which would untick it unasked.)"""
    _new_seed(f"{page}_seed")
    st.session_state[f"{page}_fresh_seed"] = False


def fresh_seed_if_asked(page: str) -> None:
    """The Generate buttons' click handler: with "new seed for every take" on, each take gets a
    fresh seed (shown in the box), so pressing Generate again gives a new take, not the same one."""
    if st.session_state.get(f"{page}_fresh_seed", True):
        _new_seed(f"{page}_seed")


def generation_controls(page: str, unique: bool, include_prime: bool = False) -> GenerationSettings:
    """Length, temperature, min-p, seed (with a "new seed" button), first sample and variations."""
    # Defaults live in session state (not in the widgets), so "same settings again" can set them;
    # every setting persists for the session, so it is still there after a visit to another page.
    for name, default in (("seconds", 4.0), ("temperature", 1.0), ("min_p", 0.0), ("seed", 0), ("variations", 1),
                          ("random_first", True), ("first_sample", 128), ("fresh_seed", True)):
        st.session_state.setdefault(f"{page}_{name}", default)
    # Bottom-aligned: in a narrow window a label wraps to two lines and would push its slider below the others.
    length_column, temperature_column, min_p_column = st.columns([2, 1, 1], vertical_alignment="bottom")
    kept = {"persist_state": "session"}
    seconds = length_column.slider("Length (seconds)", 0.5, MAX_SECONDS, step=0.5, key=f"{page}_seconds", **kept,
                                   help="Of new audio; a continuation's prime comes on top.")
    temperature = temperature_column.slider("Temperature (0 = greedy)", 0.0, 1.5, step=0.05,
                                            key=f"{page}_temperature", **kept,
                                            help="0 always takes the most likely sample: with these models such "
                                                 "takes settle into a drone or silence within a second. Above 1 "
                                                 "is wilder.")
    min_p = min_p_column.slider("Min-p (0 = off)", 0.0, 0.3, step=0.01, key=f"{page}_min_p", **kept,
                                help="Never draws a sample less likely than this share of the likeliest one: "
                                     "trims the hiss unlikely samples add; high values make sounds fade.")
    # The seed gets the widest column: a rolled seed has ten digits, cut off in a third of a narrow window.
    seed_column, button_column, variations_column = st.columns([3, 2, 2], vertical_alignment="bottom")
    seed = seed_column.number_input("Seed", 0, 2**31 - 1, key=f"{page}_seed", step=1, **kept)
    button_column.button("New seed", icon=":material/casino:", key=f"{page}_new_seed", on_click=_roll_seed,
                         args=(page,),
                         help="Rolls a seed for the next take (and keeps it: *New seed for every take* goes off)")
    variations = variations_column.number_input("Variations", 1, 4, key=f"{page}_variations", **kept,
                                                help="Several takes at once in one batched pass; the first plays live.")
    st.checkbox("New seed for every take", key=f"{page}_fresh_seed", **kept,
                help="On: each Generate draws a fresh seed (shown above afterwards). Off: the seed above is used, "
                     "so the same seed and settings give the same take again; untick it to use a seed you type.")
    first_sample = None
    if unique:
        random_first = st.checkbox("Random first sample", key=f"{page}_random_first", **kept)
        if not random_first:
            first_sample = st.slider("First sample (μ-law class)", 0, 255, key=f"{page}_first_sample", **kept)
    return GenerationSettings(seconds=float(seconds), temperature=float(temperature), min_p=float(min_p),
                              seed=int(seed), first_sample=first_sample, variations=int(variations),
                              include_prime=include_prime)


def apply_settings(page: str, settings: dict, checkpoint: str) -> None:
    """Put a take's settings and checkpoint back into the page's controls ("same settings again")."""
    st.session_state["checkpoint"] = checkpoint
    st.session_state[f"{page}_seconds"] = float(settings["seconds"])
    st.session_state[f"{page}_temperature"] = float(settings["temperature"])
    st.session_state[f"{page}_min_p"] = float(settings["min_p"])
    st.session_state[f"{page}_seed"] = int(settings["seed"])
    st.session_state[f"{page}_fresh_seed"] = False  # the same settings include the same seed
    st.session_state[f"{page}_variations"] = int(settings["variations"])
    st.session_state[f"{page}_random_first"] = settings.get("first_sample") is None
    if settings.get("first_sample") is not None:
        st.session_state[f"{page}_first_sample"] = int(settings["first_sample"])


def stop_button(label: str, key: str) -> bool:
    """A Stop with what it does said beside it (as its tooltip, the page's left edge cut it off)."""
    row = st.container(horizontal=True, vertical_alignment="center")
    pressed = row.button(label, icon=":material/stop:", key=key)
    row.caption("Stop keeps what was sampled so far.")
    return pressed
