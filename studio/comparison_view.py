"""The Compare page's running part: start a comparison, show its progress with a Stop, and hand
its results to the page when it ends."""
from __future__ import annotations

import streamlit as st

from studio.clips import EXAMPLE, decoded, lead_in_seconds
from studio.comparison import Contender, get_comparison, start_comparison
from studio.models import display_name, facts, load
from studio.takes import sampling_label
from wavenet.checkpoint import CheckpointError
from wavenet.sampler import GenerationSettings


def running() -> bool:
    return get_comparison(st.session_state.get("compare_job", "")) is not None


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
        left_out = comparison.left_out
        st.session_state["compare_results"] = comparison.takes
        st.session_state["compare_described"] = comparison.described + (
            f" · stopped before {', '.join(map(display_name, left_out))}" if left_out else "")
        st.session_state.setdefault("compare_problems", []).extend(
            f"{display_name(name)} failed: {error}" for name, error in comparison.errors.items())
        st.rerun(scope="app")
    speed = f" · {comparison.samples_per_second:,.0f} samples/s" if comparison.samples_per_second else ""
    st.progress(min(comparison.fraction, 1.0), text=f"Sampling {comparison.current or '…'}{speed}")
    if st.button("⏹ Stop", key="compare_stop", help="Keeps what was sampled so far"):
        comparison.cancel.set()
