"""Plotly figures: a waveform envelope and a CQT heat map with note names."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from wavenet.analysis import cqt, envelope


def waveform(audio: np.ndarray, sample_rate: int, seam_seconds: float | None = None, height: int = 220,
             region: tuple[float, float] | None = None) -> go.Figure:
    """The envelope of `audio`; a dashed line at the seam of a continuation, a shaded `region` (s)."""
    positions, low, high = envelope(audio, points=1500)
    times = positions / sample_rate
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=times, y=high, mode="lines", line={"width": 0.8, "color": "#6c8ebf"},
                                name="max", hoverinfo="skip"))
    figure.add_trace(go.Scatter(x=times, y=low, mode="lines", line={"width": 0.8, "color": "#6c8ebf"},
                                fill="tonexty", name="min", hoverinfo="skip"))
    if seam_seconds:
        figure.add_vline(x=seam_seconds, line={"color": "#d9534f", "dash": "dash"}, annotation_text="continuation →")
    if region:
        figure.add_vrect(x0=region[0], x1=region[1], fillcolor="#f0ad4e", opacity=0.25, line_width=0,
                         annotation_text="prime", annotation_position="top left")
    figure.update_layout(height=height, margin={"l": 50, "r": 10, "t": 10, "b": 50}, showlegend=False,
                         xaxis_title="time (s)", yaxis={"range": [-1, 1]})
    return figure


def cqt_figure(audio: np.ndarray, sample_rate: int, seam_seconds: float | None = None, height: int = 320,
               colorbar: bool = True) -> go.Figure:
    """Show it with `st.plotly_chart(..., theme=None)`: Streamlit's theme replaces the colour scale."""
    result = cqt(audio, sample_rate)
    figure = go.Figure(go.Heatmap(z=result.db, x=result.times, y=result.notes, colorscale="Magma", zmin=-80, zmax=0,
                                  colorbar={"title": "dB"}, showscale=colorbar))
    if seam_seconds:
        figure.add_vline(x=seam_seconds, line={"color": "#5bc0de", "dash": "dash"})
    # Margins wide enough for the note names, both axis titles and the toolbar (tighter ones clipped them).
    figure.update_layout(height=height, margin={"l": 70, "r": 10, "t": 30, "b": 50}, xaxis_title="time (s)",
                         yaxis={"title": "note", "tickmode": "array",
                                "tickvals": [n for n in result.notes if n[0] == "C" and n[1] != "#"]})
    return figure


def loss_axis_range(bits) -> list[float] | None:
    """A y range for the loss chart that leaves out the first steps' spike (8 bits/sample against
    2-3 later) when it would flatten everything else; None when the autoscaled chart reads well."""
    if len(bits) < 20:
        return None
    low, high = float(bits.min()), float(bits.quantile(0.95))
    if float(bits.max()) - low <= 2 * (high - low):
        return None
    return [low - 0.05 * (high - low), high + 0.25 * (high - low)]


SMOOTHED_POINTS = 300  # beyond this many logged train points, the train curve is averaged


def smoothed_train_loss(loss: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The train rows' bits as a centred rolling mean when there are many: each point is one batch's
    loss, and 2,000 of them draw a band, not a line. Returns the frame and the window (1: as logged)."""
    loss = loss.sort_values("step")
    train = loss["split"] == "train"
    window = int(train.sum()) // SMOOTHED_POINTS
    if window < 2:
        return loss, 1
    loss = loss.copy()
    loss.loc[train, "bits"] = loss.loc[train, "bits"].rolling(window, center=True, min_periods=1).mean()
    return loss, window
