"""Compare: the same settings on 2–4 checkpoints, side by side."""
import pandas as pd
import streamlit as st

from studio import comparison_view
from studio.controls import fresh_seed_if_asked, generation_controls
from studio.models import bits_and_source, checkpoint_names, display_name, kept_checkpoint_names, picker_label
from studio.plots import cqt_figure, waveform
from studio.takes import sampling_label, take_filename
from wavenet.audio import audio_bytes

MOST_COMPARED = 4  # side by side, a fifth column is too narrow for a CQT

st.title(":material/compare: Compare checkpoints")
names = checkpoint_names() + kept_checkpoint_names()
if len(names) < 2:
    st.warning("Comparing needs at least two checkpoints in `checkpoints/`, `runs/*/best` or a run's kept "
               "checkpoints (`runs/*/steps/`).")
    st.stop()
still_there = [name for name in st.session_state.get("compare_checkpoints", names[:2]) if name in names]
st.session_state["compare_checkpoints"] = still_there
# No max_selections: with it, the picker's "Select all" silently keeps the first four.
chosen = st.multiselect(f"Checkpoints (2–{MOST_COMPARED})", names, key="compare_checkpoints",
                        format_func=picker_label, persist_state="session")
use_prime = st.checkbox("Prime every model with the example clip", key="compare_use_prime", persist_state="session")
st.session_state.setdefault("compare_prime_seconds", 3.0)
prime_seconds = st.slider("Prime length (seconds)", 0.5, 10.0, step=0.5, key="compare_prime_seconds",
                          disabled=not use_prime, persist_state="session")
settings = generation_controls("compare", unique=not use_prime, include_prime=use_prime)

if len(chosen) < 2:
    st.caption("Choose at least two checkpoints to compare.")
elif len(chosen) > MOST_COMPARED:
    st.warning(f"Compare at most {MOST_COMPARED} at once: {len(chosen)} are chosen. Remove "
               f"{len(chosen) - MOST_COMPARED} to generate (the × at the right of the box clears them all).")
if st.button("▶ Generate with each", type="primary", key="compare_go",
             disabled=not 2 <= len(chosen) <= MOST_COMPARED or comparison_view.running(),
             on_click=fresh_seed_if_asked, args=("compare",)):
    comparison_view.start(chosen, settings, prime_seconds if use_prime else None)
comparison_view.show_problems()
comparison_view.progress_panel()

takes, described = comparison_view.results()
if takes and not comparison_view.running():  # the last results give way to the new ones
    st.caption(f"Settings of these takes: {described}")
    table = pd.DataFrame({display_name(t.name): {  # a column per checkpoint, like the takes below
        "parameters": t.facts["parameters"],
        "receptive field": t.facts["receptive field"].split(" (")[0],
        **dict(zip(("val. bits/sample", "bits measured on"), bits_and_source(t.facts["validation bits/sample"]))),
        "sampled": f"{t.sampled_seconds:.1f} s" + (" (stopped)" if t.stopped_early else ""),
        "samples/s (this take)": f"{t.samples_per_second:,.0f}",
        "start-up (s)": f"{t.start_up_seconds:.2f}",
        "SNR (dB)": " / ".join(f"{v:.1f}" for v in t.snr),
        "flatness": " / ".join(f"{v:.4f}" for v in t.flatness)} for t in takes})
    st.dataframe(table)
    st.caption("Samples/s: each variation's sampling speed. Start-up: the time before the first sample (setting "
               "up the sampler; when primed, also loading the prime into the model: one pass over its last "
               "receptive field); the first checkpoint of a comparison usually takes a little longer. "
               "SNR: how far the strongest pitch (with its overtones) stands out from everything else, in dB "
               "(the paper's measure, MATLAB's `snr`); below 0 dB no single pitch stands out. Flatness: median "
               "spectral flatness of the audible frames — about 0.0007 for the real piano clip, 0.56 for white "
               "noise; lower means clearer notes.")
    variations = takes[0].audio.shape[0]
    shown = st.radio("Variation shown", range(variations), format_func=lambda v: f"variation {v + 1}",
                     horizontal=True, key="compare_variation") if variations > 1 else 0
    for column, take in zip(st.columns(len(takes)), takes):
        with column:
            st.subheader(display_name(take.name))
            if take.stopped_early:
                st.caption(f"stopped early, after {take.sampled_seconds:.1f} s")
            for index, audio in enumerate(take.audio):
                if variations > 1:
                    st.caption(f"variation {index + 1}")
                wav = audio_bytes(audio, take.sample_rate)
                st.audio(wav, format="audio/wav")
                variation = index if variations > 1 else None
                row = st.container(horizontal=True)
                row.download_button("⬇ WAV", wav, take_filename(take.name, take.settings, variation, "wav",
                                                               stopped=take.stopped_early),
                                    "audio/wav", key=f"compare_wav_{take.name}_{index}")
                row.download_button("⬇ FLAC", audio_bytes(audio, take.sample_rate, "FLAC"),
                                    take_filename(take.name, take.settings, variation, "flac",
                                                  stopped=take.stopped_early),
                                    "audio/flac", key=f"compare_flac_{take.name}_{index}")
            plotted = take.audio[shown]
            if variations > 1:
                st.caption(f"Plots: variation {shown + 1}")
            st.plotly_chart(waveform(plotted, take.sample_rate, take.seam_seconds, height=160),
                            key=f"compare_wave_{take.name}")
            st.plotly_chart(cqt_figure(plotted, take.sample_rate, take.seam_seconds, height=280, colorbar=False),
                            theme=None, key=f"compare_cqt_{take.name}")
