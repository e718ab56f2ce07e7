"""Training monitor: loss curves, learning rate and speed of a run; its logged samples."""
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
    columns[3].metric("Speed", f"{rate / 1e3:,.1f}k samples/s")
    settings = run.settings()
    if run.active and settings.get("max_steps") and rate > 0:
        per_step = settings["batch_size"] * settings["output_length"]
        st.caption(f"ETA ≈ {(settings['max_steps'] - step) * per_step / rate / 60:.0f} min")
    loss = scalars[scalars["tag"].isin(["loss/train", "loss/val"])]
    hours_by_step = scalars[scalars["tag"] == "audio_hours_seen"].set_index("step")["value"]
    loss = loss.assign(hours=loss["step"].map(hours_by_step))
    x_axis = st.radio("x axis", ["step", "hours"], horizontal=True, key="training_x")
    st.plotly_chart(px.line(loss, x=x_axis, y="value", color="tag", labels={"value": "nats/sample"},
                            title="loss"), key="training_loss")
    left, right = st.columns(2)
    for column, tag in ((left, "lr"), (right, "samples_per_s")):
        data = scalars[scalars["tag"] == tag]
        if not data.empty:
            column.plotly_chart(px.line(data, x="step", y="value", title=tag), key=f"training_{tag}")


curves()
samples = run.samples()
if samples:
    st.subheader("Samples logged at checkpoints")
    for wav, png in samples[:10]:
        with st.expander(wav.stem, expanded=wav == samples[0][0]):
            st.audio(wav.read_bytes(), format="audio/wav")
            if png:
                st.image(str(png))
