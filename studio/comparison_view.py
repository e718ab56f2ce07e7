"""The Compare page's running part: start a comparison, show its progress with a Stop, and hand
its results to the page when it ends."""
from __future__ import annotations

import streamlit as st

from studio.clips import EXAMPLE, decoded
from studio.comparison import Contender, get_comparison, start_comparison
from studio.models import facts, load
from studio.takes import sampling_label
from wavenet.audio import sound_starts
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
            start = int(sound_starts(example, rate) * rate)  # not the recording's silent lead-in
            prime = example[start: start + int(prime_seconds * rate)]
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
    comparison = get_comparison(st.session_state.get("compare_job", ""))
    if comparison is None:
        return
    if comparison.finished:
        st.session_state.pop("compare_job")
        st.session_state["compare_results"] = comparison.results
        skipped = [c.name for c in comparison.contenders[len(comparison.results):]]
        st.session_state["compare_described"] = comparison.described + (
            f" · stopped before {', '.join(skipped)}" if skipped else "")
        if comparison.error:
            st.session_state["compare_problems"] = [f"The comparison failed: {comparison.error}"]
        st.rerun(scope="app")
    speed = f" · {comparison.samples_per_second:,.0f} samples/s" if comparison.samples_per_second else ""
    st.progress(min(comparison.fraction, 1.0), text=f"Sampling {comparison.current or '…'}{speed}")
    if st.button("⏹ Stop", key="compare_stop", help="Keeps what was sampled so far"):
        comparison.cancel.set()
