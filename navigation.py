"""The studio's pages (started through app.py, which adds the audio-streaming route)."""
import streamlit as st

st.set_page_config(page_title="WaveNet Piano Studio", page_icon="🎹", layout="wide")
pages = st.navigation([
    st.Page("pages/generate.py", title="Generate", icon="🎹", default=True),
    st.Page("pages/continue.py", title="Continue a clip", icon="🎼"),
    st.Page("pages/compare.py", title="Compare checkpoints", icon="⚖️"),
    st.Page("pages/training.py", title="Training monitor", icon="📈"),
])
pages.run()
