"""The panel of a running take: streaming player, progress, live waveform and Stop; then, for a take
sampled faster than real time, the rest of its playback with a Stop of its own."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import streamlit as st

from studio.controls import stop_button
from studio.live import LiveTake, Work, also_connected, get_take, start_take
from studio.models import display_name
from studio.player import streaming_player
from studio.takes import Take, add_take, session_takes
from studio.visitor import forget_running, remember_running, running_before_reload
from wavenet.model import WaveNet
from wavenet.sampler import GenerationSettings

# Until the browser's player has said whether it still plays, Stop playback stays a little longer
# than the server's estimate: after late chunks the player plays with a longer lead.
PLAYBACK_MARGIN_SECONDS = 2.0
# The live player plays only the end of a long prime before the continuation (the take list has all).
PRIME_HEARD_SECONDS = 2.0
# After Stop playback the player stays, told to stop, until it says it has (or this long): dropped at
# once, it could be unmounted by the next run before the browser ever saw the stop.
STOP_CONFIRM_SECONDS = 5.0
_collecting = threading.Lock()  # two tabs of one visitor may both see a take finish: one makes its Take
TAKE_PAGES = ("generate", "continue")
# Once a second: a short take's bar lags its player (a 4 s take samples in about 1.3 s), but twice a
# second, with training on both cores, the browser test's stream had a second late chunk in 2 of 7 runs
# (0 of 4 at once a second): the reruns compete with the sampler.
PANEL_REFRESH_SECONDS = 1.0


def start(page: str, checkpoint: str, model: WaveNet, settings: GenerationSettings,
          prime: np.ndarray | None = None, source: str = "", region: tuple[float, float] | None = None) -> None:
    take = start_take(model, checkpoint, settings, prime, source, region)
    st.session_state[f"{page}_live"] = take.id
    remember_running(page, take.id)
    st.session_state.pop(f"{page}_playing", None)  # its player silences the take before
    st.session_state.pop(f"{page}_playback_stopped", None)
    st.rerun()  # draw the page again as busy: its Generate button disabled, the live panel shown


def running(page: str) -> LiveTake | None:
    pick_up(page, f"{page}_live", get_take)
    return get_take(st.session_state.get(f"{page}_live", ""))


def pick_up(page: str, session_key: str, find: Callable[[str], Work | None]) -> None:
    """Once per browser session: the take (or comparison) this visitor had running on `page` before a
    reload carries on in this session and ends here (if the old session's grace ran out first, it
    stopped and keeps what it sampled)."""
    if f"{session_key}_picked_up" in st.session_state:
        return
    st.session_state[f"{session_key}_picked_up"] = True
    work_id = running_before_reload(page)
    work = find(work_id) if work_id else None
    if work is None:  # it ended, and the studio has restarted since or forgotten it (after an hour)
        if work_id:
            forget_running(page, work_id)
        return
    work.connected = also_connected(work.connected)
    st.session_state[session_key] = work.id


def pick_up_takes() -> None:
    """The takes this visitor had running on any page go on, wherever a reload lands."""
    for page in TAKE_PAGES:
        pick_up(page, f"{page}_live", get_take)


def sampling_elsewhere(current: st.Page, busy: list[tuple[st.Page, Callable[[], bool]]]) -> None:
    """A link to each other page where this visitor's work still samples: it goes on in the background
    while they look elsewhere, and they should not have to remember where. Refreshes by itself while
    there is one, so the link goes when the work ends."""
    def links() -> None:
        for page, is_busy in busy:
            if page.title != current.title and is_busy():
                st.page_link(page, label=f"Still sampling: {page.title}", icon=":material/graphic_eq:")

    if any(is_busy() for page, is_busy in busy if page.title != current.title):
        st.fragment(run_every=2.0)(links)()


def _finish(page: str, take: LiveTake) -> None:
    """Into the take list: made (and saved) once, by the first tab to see the take end; shown by each."""
    st.session_state.pop(f"{page}_live", None)
    forget_running(page, take.id)
    if take.error:
        st.session_state[f"{page}_error"] = f"The generation failed: {take.error}"
        return
    with _collecting:
        first = take.kept is None
        if first:
            seam = take.prime_samples / take.sample_rate if take.prime_samples else None
            take.kept = Take(page, take.checkpoint, take.settings.to_dict(), take.audio(), take.sample_rate, seam,
                             take.samples_per_second, take.stopped_early, take.source, take.region)
    if first:
        add_take(take.kept)
    elif all(kept.key != take.kept.key for kept in session_takes()):
        session_takes().insert(0, take.kept)  # another tab saved it
    st.session_state[f"{page}_playing"] = take


def live_player(page: str, take: LiveTake, stop: bool = False) -> bool | None:
    """The take's streaming player, from the last seconds of its prime on; says whether it still plays."""
    return streaming_player(take.id, take.sample_rate, take.prime_samples + take.total_samples,
                            key=f"{page}_player_{take.id}", stop=stop, start_sample=_prime_not_heard(take))


def _prime_not_heard(take: LiveTake) -> int:
    """Samples of a long prime the live player skips."""
    return max(0, take.prime_samples - int(PRIME_HEARD_SECONDS * take.sample_rate))


def _stop_playback(page: str, take_id: str) -> None:
    st.session_state[f"{page}_playback_stopped"] = (take_id, time.time())


def _still_playing(page: str) -> None:
    """A take sampled faster than real time plays on after sampling ended: its player stays, with a Stop,
    until the browser's player says it has played everything (or, before it has said, until the
    server's estimate of the playback's end has passed)."""
    take: LiveTake | None = st.session_state.get(f"{page}_playing")
    if take is None:
        return
    asked = st.session_state.get(f"{page}_playback_stopped")
    stopped = asked is not None and asked[0] == take.id
    playing = live_player(page, take, stop=stopped)
    playback_ends = take.playback_ends() - _prime_not_heard(take) / take.sample_rate
    estimate_passed = time.time() > playback_ends + PLAYBACK_MARGIN_SECONDS
    if (playing is False or (playing is None and estimate_passed)
            or (stopped and time.time() > asked[1] + STOP_CONFIRM_SECONDS)):
        st.session_state.pop(f"{page}_playing")
        st.session_state.pop(f"{page}_playback_stopped", None)
        return
    if stopped:
        return  # no Stop button while the player confirms
    # The same places as while sampling (player, progress bar, Stop), so that Stop playback replaces
    # Stop sampling at once instead of leaving it faded on the page until the rerun ends.
    st.empty()
    st.button("Stop playback", icon=":material/stop:", key=f"{page}_stop_playback", on_click=_stop_playback,
              args=(page, take.id))


@st.fragment(run_every=PANEL_REFRESH_SECONDS)
def live_panel(page: str) -> None:
    """Refreshes by itself while the take is sampled (and while it plays on); hands the finished
    take to the take list."""
    take = running(page)
    if take is None:
        _still_playing(page)
        return
    if take.finished:
        _finish(page, take)
        st.rerun(scope="app")
    live_player(page, take)
    fraction = take.done_samples / take.total_samples if take.total_samples else 0.0
    rate = take.samples_per_second
    detail = (f"{rate:,.0f} samples/s · {rate / take.sample_rate:.2f}× real time · {take.seconds_left:.0f} s left"
              if rate else "starting…")
    # How much has been sampled is the bar itself, with no count of its own: the player's line above
    # says how much it received, 4× a second, and a second count updated less often would disagree.
    st.progress(min(fraction, 1.0), text=f"{display_name(take.checkpoint)}, seed {take.settings.seed}: {detail}")
    if stop_button("Stop sampling", key=f"{page}_stop"):
        take.cancel.set()


def show_error(page: str) -> None:
    message = st.session_state.pop(f"{page}_error", None)
    if message:
        st.error(message)
