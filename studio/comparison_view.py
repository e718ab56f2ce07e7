"""The Compare page's running part: start a comparison, show its progress with a Stop, and hand
its results to the page when it ends."""
from __future__ import annotations

import threading
from dataclasses import fields

import streamlit as st

from studio.clips import EXAMPLE, decoded, lead_in_seconds
from studio.comparison import ComparedTake, Comparison, Contender, get_comparison, start_comparison
from studio.live import also_connected
from studio.models import display_name, facts, load
from studio.visitor import remember_running, running_before_reload, visitor_store
from studio.takes import sampling_label
from wavenet.checkpoint import CheckpointError
from wavenet.sampler import GenerationSettings

SHELF = "compare"  # the last comparison's takes, beside the visitor's take list
_collecting = threading.Lock()  # two tabs of one visitor may both see a comparison end: one collects it


def running() -> bool:
    if "compare_picked_up" not in st.session_state:
        st.session_state["compare_picked_up"] = True
        _pick_up()
    return get_comparison(st.session_state.get("compare_job", "")) is not None


def _pick_up() -> None:
    """After a reload: the comparison this visitor was running carries on in this browser session."""
    comparison = get_comparison(running_before_reload(SHELF))
    if comparison is None or comparison.collected:
        remember_running(SHELF, None)
        return
    comparison.connected = also_connected(comparison.connected)
    st.session_state["compare_job"] = comparison.id


def results() -> tuple[list[ComparedTake], str]:
    """The last comparison's takes and its settings in words; kept on disk, so a reload keeps them."""
    if "compare_results" not in st.session_state:
        st.session_state["compare_results"], st.session_state["compare_described"] = _saved_results()
    return st.session_state["compare_results"], st.session_state["compare_described"]


def _saved_results() -> tuple[list[ComparedTake], str]:
    try:
        saved = sorted(visitor_store(SHELF).items(), key=lambda item: item[1].get("order", 0))
        takes = [ComparedTake(**{name: value for name, value in meta.items() if name not in ("order", "described")},
                              audio=audio) for _, meta, audio in saved]
    except (OSError, TypeError, ValueError, AttributeError):
        return [], ""  # none yet, or written by another version
    return takes, saved[0][1].get("described", "") if saved else ""


def _keep(comparison: Comparison, described: str) -> None:
    """Show the comparison's results on this page, and keep them on disk in place of the last ones."""
    st.session_state["compare_results"], st.session_state["compare_described"] = comparison.takes, described
    try:
        store = visitor_store(SHELF)
        store.clear()
        for order, take in enumerate(comparison.takes):
            meta = {each.name: getattr(take, each.name) for each in fields(take) if each.name != "audio"}
            store.put(str(order), {**meta, "order": order, "described": described}, take.audio)
    except OSError as error:
        st.toast(f"This comparison could not be kept on disk ({error.strerror or error}): it is here until you "
                 "reload the page.")


def start(names: list[str], settings: GenerationSettings, prime_seconds: float | None) -> None:
    """Load the chosen checkpoints (saying which cannot be) and sample them in the background, each
    primed with the example clip's first `prime_seconds` when given."""
    contenders, problems = [], []
    for name in names:
        try:
            model, info = load(name)
        except CheckpointError as error:
            problems.append(str(error))
            continue
        rate = model.config.sample_rate
        prime = None
        if prime_seconds:
            example = decoded(EXAMPLE, rate).audio
            begin = int(lead_in_seconds(example, rate) * rate)
            prime = example[begin: begin + int(prime_seconds * rate)]
        contenders.append(Contender(name, model, facts(model, info), prime))
    st.session_state["compare_problems"] = problems
    if not contenders:
        return
    described = (f"{settings.seconds:g} s · {sampling_label(settings.to_dict())}"
                 + (f" · primed with {prime_seconds:g} s of the example clip" if prime_seconds else ""))
    st.session_state["compare_job"] = start_comparison(contenders, settings, described).id
    remember_running(SHELF, st.session_state["compare_job"])
    st.rerun()  # draw the page again as busy: its button disabled, the progress shown


def show_problems() -> None:
    for problem in st.session_state.get("compare_problems", []):
        st.error(problem)


@st.fragment(run_every=1.0)
def progress_panel() -> None:
    """Refreshes by itself while the comparison samples; hands its results to the page when it ends."""
    job = st.session_state.get("compare_job")
    if job is None:
        return
    comparison = get_comparison(job)
    if comparison is None:  # not collected within the hour finished comparisons are kept
        st.session_state.pop("compare_job")
        st.session_state["compare_problems"] = ["That comparison's results have expired: generate again."]
        st.rerun(scope="app")
    if comparison.finished:
        st.session_state.pop("compare_job")
        with _collecting:
            collected, comparison.collected = comparison.collected, True
        if collected:  # by another tab: read what it kept
            st.session_state.pop("compare_results", None)
            st.rerun(scope="app")
        remember_running(SHELF, None)
        left_out = comparison.left_out
        _keep(comparison, comparison.described + (
            f" · stopped before {', '.join(map(display_name, left_out))}" if left_out else ""))
        st.session_state.setdefault("compare_problems", []).extend(
            f"{display_name(name)} failed: {error}" for name, error in comparison.errors.items())
        st.rerun(scope="app")
    which = (f"{display_name(comparison.current)} ({comparison.current_number} of {len(comparison.contenders)})"
             if comparison.current else "…")
    speed = (f" · {comparison.samples_per_second:,.0f} samples/s · {comparison.current_seconds_left:.0f} s left "
             "for this one" if comparison.samples_per_second else "")
    st.progress(min(comparison.fraction, 1.0), text=f"Sampling {which}{speed}")
    if st.button("⏹ Stop", key="compare_stop", help="Keeps what was sampled so far"):
        comparison.cancel.set()
