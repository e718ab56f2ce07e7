"""WaveNet Piano Studio: `streamlit run app.py` (or `make studio`).

The App adds one same-origin route, /wavenet/take/<id>, that streams a take's audio to the
browser player while it is sampled; the pages themselves are in navigation.py.
"""
import streamlit as st

from studio.routes import ROUTES

app = st.App("navigation.py", routes=ROUTES)
