"""Training monitor: loss curves, learning rate and speed of a run; its logged samples."""
import math

import plotly.express as px
import streamlit as st

from studio.runs import find_runs

st.title("📈 Training monitor")
runs = find_runs()
if not runs:
    st.info("No training runs yet. Start one with `python -m wavenet train --data … --run runs/NAME`.")
    st.stop()
run = runs[[r.name for r in runs].index(st.selectbox("Run", [r.name for r in runs], key="training_run"))]


@st.fragment(run_every=5.0 if run.active else None)
def curves() -> None:
    scalars = run.scalars()
    if scalars.empty:
        st.info("This run has not logged anything yet.")
        return
    latest = scalars.groupby("tag").last()
    step = int(scalars["step"].max())
    hours = latest["value"].get("audio_hours_seen", float("nan"))
    rate = latest["value"].get("samples_per_s", float("nan"))
    state = "🟢 running" if run.active else "⏸ not running"
    columns = st.columns(4)
    columns[0].metric("State", state)
    columns[1].metric("Step", f"{step:,}")
    columns[2].metric("Audio seen", f"{hours:.2f} h")
    columns[3].metric("Speed", f"{rate / 1e6:.2f}M samples/s" if rate >= 1e6 else f"{rate / 1e3:,.1f}k samples/s")
    settings = run.settings()
    if run.active and settings.get("max_steps") and rate > 0:
        per_step = settings["batch_size"] * settings["output_length"]
        st.caption(f"ETA ≈ {(settings['max_steps'] - step) * per_step / rate / 60:.0f} min")
    loss = scalars[scalars["tag"].isin(["loss/train", "loss/val"])]
    hours_by_step = scalars[scalars["tag"] == "audio_hours_seen"].set_index("step")["value"]
    loss = loss.assign(hours=loss["step"].map(hours_by_step), bits=loss["value"] / math.log(2),
                       split=loss["tag"].map({"loss/train": "train", "loss/val": "validation"}))
    x_axis = st.radio("x axis", ["step", "hours of audio seen"], horizontal=True, key="training_x")
    x = "step" if x_axis == "step" else "hours"
    st.plotly_chart(px.line(loss, x=x, y="bits", color="split", title="Loss (next-sample cross-entropy)",
                            labels={"bits": "bits/sample", "hours": "hours of audio seen"},
                            color_discrete_map={"train": "#6c8ebf", "validation": "#d9534f"}), key="training_loss")
    left, right = st.columns(2)
    for column, tag, title in ((left, "lr", "Learning rate"), (right, "samples_per_s", "Training samples/s")):
        data = scalars[scalars["tag"] == tag]
        if not data.empty:
            column.plotly_chart(px.line(data, x="step", y="value", title=title, labels={"value": title}),
                                key=f"training_{tag}")


curves()
samples = run.samples()
if samples:
    st.subheader("Samples logged at checkpoints")
    for wav, png in samples[:10]:
        with st.expander(wav.stem, expanded=wav == samples[0][0]):
            st.audio(wav.read_bytes(), format="audio/wav")
            if png:
                st.image(str(png))
