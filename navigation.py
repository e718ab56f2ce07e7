"""The studio's pages (started through app.py, which adds the audio-streaming route).

They live in app_pages/, not pages/: Streamlit treats a pages/ folder beside the main script as
an old-style multipage app until st.navigation has run once, so a bookmarked page opened as a
fresh server's first request would show the folder's file names as navigation.
"""
from pathlib import Path

import streamlit as st

from studio import comparison_view, live_view
from studio.comparison_view import pick_up_comparison
from studio.live_view import pick_up_takes, sampling_elsewhere
from studio.visitor import remember_controls, restore_controls, visitor_id

# A local image: a :material/…: page icon is fetched from Google's font servers, which an offline studio cannot reach.
st.set_page_config(page_title="WaveNet Piano Studio", page_icon=str(Path(__file__).parent / "assets" / "studio-icon.png"),
                   layout="wide")
visitor_id()  # back in the address after a move to another page, so that a reload finds the takes
restore_controls()
remember_controls()  # before the page runs: a reload may cut a long run short
pick_up_takes()  # what was sampling before a reload goes on, on whichever page it lands
pick_up_comparison()
generate = st.Page("app_pages/generate.py", title="Generate", icon=":material/piano:", default=True)
continue_clip = st.Page("app_pages/continue.py", title="Continue a clip", icon=":material/queue_music:")
compare = st.Page("app_pages/compare.py", title="Compare checkpoints", icon=":material/compare:")
current = st.navigation([generate, continue_clip, compare,
                         st.Page("app_pages/training.py", title="Training monitor", icon=":material/monitoring:")])
with st.sidebar:
    sampling_elsewhere(current, [(generate, lambda: live_view.running("generate") is not None),
                                 (continue_clip, lambda: live_view.running("continue") is not None),
                                 (compare, comparison_view.running)])
current.run()
