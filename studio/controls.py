"""The generation controls shared by the Generate, Continue and Compare pages."""
from __future__ import annotations

import random

import streamlit as st

from wavenet.sampler import GenerationSettings

MAX_SECONDS = 60.0


def _new_seed(key: str) -> None:
    st.session_state[key] = random.randint(0, 2**31 - 1)


def generation_controls(page: str, unique: bool, include_prime: bool = False) -> GenerationSettings:
    """Length, temperature, seed (with a "new seed" button), first sample and variations."""
    seed_key = f"{page}_seed"
    st.session_state.setdefault(seed_key, 0)
    left, right = st.columns(2)
    seconds = left.slider("Length (seconds)", 0.5, MAX_SECONDS, 4.0, 0.5, key=f"{page}_seconds")
    temperature = right.slider("Temperature (0 = greedy)", 0.0, 1.5, 1.0, 0.05, key=f"{page}_temperature",
                               help="0 always takes the most likely sample; above 1 is wilder.")
    seed_column, button_column, variations_column = st.columns([3, 2, 3], vertical_alignment="bottom")
    seed = seed_column.number_input("Seed", 0, 2**31 - 1, key=seed_key, step=1)
    button_column.button("🎲 New seed", key=f"{page}_new_seed", on_click=_new_seed, args=(seed_key,))
    variations = variations_column.number_input("Variations", 1, 4, 1, key=f"{page}_variations",
                                                help="Several takes at once in one batched pass; the first plays live.")
    first_sample = None
    if unique:
        random_first = st.checkbox("Random first sample", True, key=f"{page}_random_first")
        if not random_first:
            first_sample = st.slider("First sample (μ-law class)", 0, 255, 128, key=f"{page}_first_sample")
    return GenerationSettings(seconds=float(seconds), temperature=float(temperature), seed=int(seed),
                              first_sample=first_sample, variations=int(variations), include_prime=include_prime)


def apply_settings(page: str, settings: dict) -> None:
    """Put a take's settings back into the page's controls ("same settings again")."""
    st.session_state[f"{page}_seconds"] = float(settings["seconds"])
    st.session_state[f"{page}_temperature"] = float(settings["temperature"])
    st.session_state[f"{page}_seed"] = int(settings["seed"])
    st.session_state[f"{page}_variations"] = int(settings["variations"])
    if f"{page}_random_first" in st.session_state or settings.get("first_sample") is not None:
        st.session_state[f"{page}_random_first"] = settings.get("first_sample") is None
        if settings.get("first_sample") is not None:
            st.session_state[f"{page}_first_sample"] = int(settings["first_sample"])
