"""Training monitor: loss curves, learning rate and speed of a run; its logged samples.
A new run can be started here; it trains in the background and can be stopped from the page."""
import math
from pathlib import Path

import numpy as np
import plotly.express as px
import streamlit as st

from studio import training_jobs
from studio.models import checkpoint_names, device
from studio.plots import loss_axis_range, smoothed_train_loss
from studio.runs import LoggedSample, find_runs
from studio.visitor import remember_controls
from wavenet.train import step_samples

RUNS = Path("runs")

st.title(":material/monitoring: Training monitor")
runs = find_runs(RUNS)
with st.expander("Start a training run", expanded=not runs, icon=":material/add:"):
    training_jobs.launch_form(RUNS, checkpoint_names(), ["cpu", "cuda"] if device() == "cuda" else ["cpu"])
if not runs:
    st.info("No training runs yet: start one above, or with `python -m wavenet train --data … --run runs/NAME`.")
    st.stop()
names = [r.name for r in runs]
if st.session_state.get("training_run") not in names:  # first visit: the run that is training, if any
    st.session_state["training_run"] = next((r.name for r in runs if r.active), names[0])
run = runs[names.index(st.selectbox("Run", names, key="training_run", persist_state="session"))]


@st.fragment(run_every=5.0 if run.active else None)
def progress() -> None:
    """Everything that changes while the run trains: its state, curves and logged samples."""
    remember_controls()  # its own reruns skip the page's (and so the x axis chosen in it)
    st.caption(run.description())
    if run.process is not None:
        stop_column, log_column = st.columns([1, 4])
        if stop_column.button("Stop training", icon=":material/stop:", key="training_stop"):
            training_jobs.stop(run.path)
            stop_column.caption("Stopping: it saves a checkpoint after this step (continue later with `--resume`).")
        log_column.code(training_jobs.log_tail(RUNS, run.name) or "starting…", language=None)
    elif run.started_here:
        saved = run.saved_steps()
        if saved is None:
            st.caption("Started from the studio; it ended without a checkpoint. Its last output:")
            st.code(training_jobs.log_tail(RUNS, run.name) or "(no output)", language=None)
        else:
            st.caption(f"Started from the studio; not running now. Its checkpoint after step {saved:,} is in "
                       f"`{run.path / 'last'}`.")
            minutes_column, resume_column = st.columns([2, 1], vertical_alignment="bottom")
            minutes = minutes_column.number_input("More minutes", 0.5, 7 * 24 * 60.0, 30.0, key="training_more")
            if resume_column.button("▶ Resume training", key="training_resume"):
                training_jobs.resume(run.path, minutes)
                st.rerun(scope="app")
    scalars = run.scalars()
    if scalars.empty:
        st.info("This run has not logged anything yet.")
        return
    latest = scalars.groupby("tag").last()
    step = int(scalars["step"].max())
    hours = latest["value"].get("audio_hours_seen", float("nan"))
    rate = latest["value"].get("samples_per_s", float("nan"))
    # A badge, not a fourth metric: a narrow window cut "running" to "run…".
    st.badge("running" if run.active else "idle", color="green" if run.active else "gray")
    columns = st.columns(3)
    columns[0].metric("Step", f"{step:,}")
    columns[1].metric("Audio seen", f"{hours:.2f} h")
    columns[2].metric("Latest samples/s", f"{rate / 1e6:.2f}M" if rate >= 1e6 else f"{rate / 1e3:,.1f}k")
    before = run.hours_before()
    if before:
        st.caption(f"Audio seen: this run's steps only; the weights it started from had heard {before:,.1f} h "
                   f"before it ({before + hours:,.1f} h in all).")
    record = run.record()
    settings = record.get("settings", {})
    if run.active and settings.get("max_steps") and rate > 0:
        per_step = step_samples(settings, record.get("processes", 1))
        st.caption(f"ETA ≈ {(settings['max_steps'] - step) * per_step / rate / 60:.0f} min")
    elif run.active and settings.get("time_budget") and "elapsed_seconds" in latest.index:
        trained = latest["value"]["elapsed_seconds"]  # the trainer's own clock: pauses between resumes do not count
        st.caption(f"ETA ≈ {max(0.0, settings['time_budget'] - trained) / 60:.0f} min (time budget)")
    seen = scalars[scalars["tag"] == "audio_hours_seen"]
    scalars = scalars.assign(hours=np.interp(scalars["step"], seen["step"], seen["value"]) if len(seen) else np.nan)
    loss = scalars[scalars["tag"].isin(["loss/train", "loss/val"])]
    loss = loss.assign(bits=loss["value"] / math.log(2),
                       split=loss["tag"].map({"loss/train": "train", "loss/val": "validation"}))
    x_axis = st.radio("x axis", ["step", "hours of audio seen"], horizontal=True, key="training_x", persist_state="session")
    x = "step" if x_axis == "step" else "hours"
    loss, window = smoothed_train_loss(loss)
    loss_chart = px.line(loss, x=x, y="bits", color="split", title="Loss (next-sample cross-entropy)",
                         markers=len(loss) < 100, labels={"bits": "bits/sample", "hours": "hours of audio seen"},
                         color_discrete_map={"train": "#6c8ebf", "validation": "#d9534f"})
    shown = loss_axis_range(loss["bits"])
    if shown:
        loss_chart.update_yaxes(range=shown)
    notes = ([f"Train: the mean of each {window} neighbouring logged points (each is one batch's loss)."]
             if window > 1 else []) + (["The first steps' higher losses are above the chart: its ⤢ autoscale "
                                        "button shows them."] if shown else [])
    if notes:
        st.caption(" ".join(notes))
    st.plotly_chart(loss_chart, key="training_loss")
    left, right = st.columns(2)
    for column, tag, title in ((left, "lr", "Learning rate"), (right, "samples_per_s", "Training samples/s")):
        data = scalars[scalars["tag"] == tag]
        if not data.empty:
            chart = px.line(data, x=x, y="value", title=title, markers=len(data) < 50,
                            labels={"value": title, "hours": "hours of audio seen"})
            # The values as one reads them, not plotly's "Training samples/s=14.99537k" running off the edge.
            value = "lr %{y:.3~g}" if tag == "lr" else "%{y:,.0f} samples/s"
            where = "step %{x:,}" if x == "step" else "%{x:.2f} h"
            chart.update_traces(hovertemplate=f"{value}<br>{where}<extra></extra>")
            if tag == "lr":
                chart.update_yaxes(tickformat="~g")  # 0.0003, not 300µ
            column.plotly_chart(chart, key=f"training_{tag}")
    samples = run.samples()
    if samples:
        st.subheader("Samples logged at checkpoints")
        by_label = {sample.label: sample for sample in reversed(samples)}  # oldest first, as the slider reads
        labels = list(by_label)
        chosen = st.select_slider(f"Slide through the {len(samples)} checkpoints to hear training progress",
                                  labels, value=labels[-1], key=f"training_sample_{run.name}") if len(labels) > 1 \
            else labels[0]
        if len(labels) == 1:
            st.caption(chosen)
        show_sample(by_label[chosen])
    examples = run.examples()
    if examples:
        st.subheader("Example generations from its model card")
        for column, example in zip(st.columns(len(examples)), examples):
            with column:
                st.caption(example.label)
                show_sample(example)


def show_sample(sample: LoggedSample) -> None:
    st.audio(sample.wav.read_bytes(), format="audio/wav")
    if sample.cqt:
        st.image(str(sample.cqt))


progress()
