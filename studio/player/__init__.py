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
    html='<div class="wavenet-player"><canvas class="wavenet-wave" width="900" height="70"></canvas>'
         '<div class="wavenet-status"></div></div>',
    css=".wavenet-status { font-size: 0.85rem; opacity: 0.8; }\n"
        ".wavenet-wave { width: 100%; height: 70px; background: rgba(108, 142, 191, 0.08); border-radius: 4px; }\n",
    js=(_HERE / "player.js").read_text(),
)


def streaming_player(take_id: str | None, sample_rate: int, total_samples: int, key: str,
                     stop: bool = False, start_sample: int = 0) -> bool | None:
    """Play take `take_id` from sample `start_sample` on while it is sampled, drawing its waveform as
    it arrives (nothing when None); `stop` silences it. Starting another take silences this one too.

    Returns what the browser's player last said: True while it has audio still to receive or to play,
    False once it has played everything (or was stopped), None before it has said anything."""
    data = ({"url": f"/wavenet/take/{take_id}?from={start_sample}", "rate": sample_rate,
             "total": total_samples - start_sample, "stop": stop} if take_id else {})
    # The callback does nothing; passing it is what makes "playing" a state the result carries.
    return _player(key=key, data=data, on_playing_change=lambda: None).playing
