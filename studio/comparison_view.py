"""The Compare page's running part: start a comparison, show its progress with a Stop, and hand
its results to the page when it ends."""
from __future__ import annotations

import threading

import streamlit as st

from studio.clips import EXAMPLE, decoded, lead_in_seconds
from studio.comparison import ComparedTake, Contender, get_comparison, start_comparison
from studio.controls import stop_button
from studio.live_view import pick_up
from studio.models import display_name, facts, load
from studio.takes import sampling_label
from studio.visitor import forget_running, remember_running, saved_fields, visitor_store
from wavenet.checkpoint import CheckpointError
from wavenet.sampler import GenerationSettings

SHELF = "compare"  # the last comparison's takes, beside the visitor's take list
_saving = threading.Lock()  # two tabs of one visitor may both see a comparison end: one saves it


def running() -> bool:
    pick_up_comparison()
    return get_comparison(st.session_state.get("compare_job", "")) is not None


def pick_up_comparison() -> None:
    """A comparison this visitor had running goes on, wherever a reload lands."""
    pick_up(SHELF, "compare_job", get_comparison)


def results() -> tuple[list[ComparedTake], str]:
    """The last comparison's takes and its settings in words; kept on disk, so a reload keeps them."""
    if "compare_results" not in st.session_state:
        st.session_state["compare_results"], st.session_state["compare_described"] = _saved_results()
    return st.session_state["compare_results"], st.session_state["compare_described"]


def _saved_results() -> tuple[list[ComparedTake], str]:
    try:
        saved = sorted(visitor_store(SHELF).items(), key=lambda item: int(item[0]))
        takes = [ComparedTake(**{name: value for name, value in meta.items() if name != "described"}, audio=audio)
                 for _, meta, audio in saved]
    except (OSError, TypeError, ValueError):
        return [], ""  # none yet, or written by another version
    return takes, saved[0][1].get("described", "") if saved else ""


def _save(takes: list[ComparedTake], described: str) -> None:
    """Keep a comparison's results on disk in place of the last ones (its takes keyed by their order)."""
    try:
        store = visitor_store(SHELF)
        store.clear()
        for order, take in enumerate(takes):
            store.put(str(order), {**saved_fields(take), "described": described}, take.audio)
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
        forget_running(SHELF, comparison.id)
        left_out = comparison.left_out
        described = comparison.described + (
            f" · stopped before {', '.join(map(display_name, left_out))}" if left_out else "")
        st.session_state["compare_results"], st.session_state["compare_described"] = comparison.takes, described
        with _saving:
            first, comparison.kept = not comparison.kept, True
        if first:
            _save(comparison.takes, described)
        st.session_state.setdefault("compare_problems", []).extend(
            f"{display_name(name)} failed: {error}" for name, error in comparison.errors.items())
        st.rerun(scope="app")
    which = (f"{display_name(comparison.current)} ({comparison.current_number} of {len(comparison.contenders)})"
             if comparison.current else "…")
    speed = (f" · {comparison.samples_per_second:,.0f} samples/s · {comparison.current_seconds_left:.0f} s left "
             "for this one" if comparison.samples_per_second else "")
    st.progress(min(comparison.fraction, 1.0), text=f"Sampling {which}{speed}")
    if stop_button("Stop", key="compare_stop"):
        comparison.cancel.set()
