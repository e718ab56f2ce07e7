"""Generate: unique or seeded takes, heard while they are sampled."""
import streamlit as st

from studio import live_view
from studio.clips import clip_picker, generation_mode, prime_region
from studio.controls import fresh_seed_if_asked, generation_controls
from studio.sidebar import checkpoint_picker
from studio.takes import take_list

st.title(":material/piano: Generate")
name, model, info = checkpoint_picker()
rate = model.config.sample_rate

seeded = generation_mode("generate")
prime, clip_name, region = None, "", None
if seeded:
    clip, clip_name = clip_picker("generate", rate)
    if clip is not None:
        prime, region = prime_region("generate", clip, rate, clip_name)
settings = generation_controls("generate", unique=not seeded, include_prime=prime is not None)

busy = live_view.running("generate") is not None
can_start = not busy and (not seeded or prime is not None)
if st.button("▶ Generate", type="primary", disabled=not can_start, key="generate_go",
              on_click=fresh_seed_if_asked, args=("generate",)):
    live_view.start("generate", name, model, settings, prime, clip_name, region)
live_view.show_error("generate")
live_view.live_panel("generate")
take_list("generate")
