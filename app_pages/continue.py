"""Continue: upload a piano clip (or take the example) and let the model carry it on."""
import streamlit as st

from studio import live_view
from studio.clips import clip_picker, prime_region
from studio.controls import fresh_seed_if_asked, generation_controls
from studio.sidebar import checkpoint_picker
from studio.takes import take_list

st.title(":material/queue_music: Continue a clip")
name, model, info = checkpoint_picker()
rate = model.config.sample_rate

clip, clip_name = clip_picker("continue", rate)
prime, region = None, None
if clip is not None:
    st.caption(f"{clip_name}: {len(clip) / rate:.1f} s")
    prime, region = prime_region("continue", clip, rate, clip_name)
settings = generation_controls("continue", unique=False, include_prime=True)

busy = live_view.running("continue") is not None
if st.button("▶ Continue", type="primary", disabled=busy or prime is None, key="continue_go",
              on_click=fresh_seed_if_asked, args=("continue",)):
    live_view.start("continue", name, model, settings, prime, clip_name, region)
live_view.show_error("continue")
live_view.live_panel("continue")
take_list("continue")
