"""The streaming audio player: a Components v2 frontend (static HTML/CSS/JS, no build step).

Mounted once per take with the take's audio-route URL; the browser fetches the PCM as it
is sampled and schedules it gaplessly with the Web Audio API.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

_HERE = Path(__file__).resolve().parent
_player = st.components.v2.component(
    "wavenet_streaming_player",
    html='<div class="wavenet-player"><span class="wavenet-status"></span></div>',
    css=".wavenet-status { font-size: 0.85rem; opacity: 0.8; }\n",
    js=(_HERE / "player.js").read_text(),
)


def streaming_player(take_id: str | None, sample_rate: int, key: str) -> None:
    """Play take `take_id` while it is sampled (nothing when None)."""
    data = {"url": f"/wavenet/take/{take_id}", "rate": sample_rate} if take_id else {}
    _player(key=key, data=data)
