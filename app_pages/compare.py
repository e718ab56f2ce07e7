"""Compare: the same settings on 2–4 checkpoints, side by side."""
import time

import numpy as np
import pandas as pd
import streamlit as st

from studio.clips import EXAMPLE, decoded
from studio.controls import fresh_seed_if_asked, generation_controls
from studio.models import checkpoint_names, facts, load
from studio.plots import cqt_figure, waveform
from studio.takes import sampling_label, take_filename
from wavenet.analysis import snr, spectral_flatness
from wavenet.audio import audio_bytes
from wavenet.checkpoint import CheckpointError
from wavenet.sampler import stream

st.title("⚖️ Compare checkpoints")
names = checkpoint_names()
if len(names) < 2:
    st.warning("Comparing needs at least two checkpoints in `checkpoints/` or `runs/*/best`.")
    st.stop()
still_there = [name for name in st.session_state.get("compare_checkpoints", names[:3]) if name in names]
st.session_state["compare_checkpoints"] = still_there
chosen = st.multiselect("Checkpoints (2–4)", names, max_selections=4, key="compare_checkpoints",
                        persist_state="session")
use_prime = st.checkbox("Prime every model with the example clip", key="compare_use_prime", persist_state="session")
prime_seconds = st.slider("Prime length (seconds)", 0.5, 10.0, 3.0, 0.5, key="compare_prime_seconds",
                          disabled=not use_prime, persist_state="session")
settings = generation_controls("compare", unique=not use_prime, include_prime=use_prime)

if len(chosen) < 2:
    st.caption("Choose at least two checkpoints to compare.")
if st.button("▶ Generate with each", type="primary", disabled=len(chosen) < 2, key="compare_go",
              on_click=fresh_seed_if_asked, args=("compare",)):
    results = []
    progress = st.progress(0.0, text="Sampling…")
    for index, name in enumerate(chosen):
        try:
            model, info = load(name)
        except CheckpointError as error:
            st.error(str(error))
            continue
        rate = model.config.sample_rate
        prime = decoded(EXAMPLE, rate).audio[: int(prime_seconds * rate)] if use_prime else None
        started, chunks, start_up, speed = time.perf_counter(), [], None, 0.0
        for chunk in stream(model, settings, prime):
            chunks.append(chunk.audio)
            if chunk.total:
                if start_up is None:  # the time before sampling began (mostly loading the prime)
                    start_up = time.perf_counter() - started - chunk.done / chunk.samples_per_second
                speed = chunk.samples_per_second
                progress.progress((index + chunk.done / chunk.total) / len(chosen),
                                  text=f"{name}: {speed:,.0f} samples/s")
        audio = np.concatenate(chunks, axis=1)  # [variations, samples]
        generated = audio[:, len(prime) if prime is not None else 0:]
        results.append({"name": name, "audio": audio, "rate": rate, "facts": facts(model, info),
                        "settings": settings.to_dict(),
                        "samples_per_s": speed, "start_up": start_up,
                        "snr": [snr(take) for take in generated],
                        "flatness": [spectral_flatness(take) for take in generated],
                        "seam": len(prime) / rate if prime is not None else None})
    progress.empty()
    st.session_state["compare_results"] = results
    st.session_state["compare_described"] = (f"{settings.seconds:g} s · {sampling_label(settings.to_dict())}"
                                             + (f" · primed with {prime_seconds:g} s of the example clip"
                                                if use_prime else ""))

results = st.session_state.get("compare_results", [])
if results:
    st.caption(f"Settings of these takes: {st.session_state.get('compare_described', '')}")
    table = pd.DataFrame([{"checkpoint": r["name"], "parameters": r["facts"]["parameters"],
                           "receptive field": r["facts"]["receptive field"],
                           "validation bits/sample": r["facts"]["validation bits/sample"],
                           "samples/s (this take)": f"{r['samples_per_s']:,.0f}",
                           "start-up (s)": f"{r['start_up'] or 0:.2f}",
                           "SNR (dB)": " / ".join(f"{v:.1f}" for v in r["snr"]),
                           "flatness": " / ".join(f"{v:.4f}" for v in r["flatness"])}
                          for r in results])
    st.dataframe(table, hide_index=True)
    st.caption("Samples/s: each variation's sampling speed. Start-up: the time before the first sample, mostly "
               "loading the prime into the model (one pass over its last receptive field) when primed. "
               "SNR: how far the strongest tone (with its harmonics) stands out from everything else, as MATLAB's "
               "`snr(x)` measures it; below 0 dB no single tone dominates. Flatness: median spectral flatness of the "
               "audible frames — about 0.0007 for the real piano clip, 0.56 for white noise; lower means clearer notes.")
    variations = results[0]["audio"].shape[0]
    shown = st.radio("Variation shown", range(variations), format_func=lambda v: f"variation {v + 1}",
                     horizontal=True, key="compare_variation") if variations > 1 else 0
    for column, result in zip(st.columns(len(results)), results):
        with column:
            st.subheader(result["name"])
            for index, take in enumerate(result["audio"]):
                if variations > 1:
                    st.caption(f"variation {index + 1}")
                wav = audio_bytes(take, result["rate"])
                st.audio(wav, format="audio/wav")
                st.download_button("⬇ WAV", wav, take_filename(result["name"], result["settings"],
                                                                index if variations > 1 else None, "wav"),
                                   "audio/wav", key=f"compare_wav_{result['name']}_{index}")
            take = result["audio"][shown]
            if variations > 1:
                st.caption(f"Plots: variation {shown + 1}")
            st.plotly_chart(waveform(take, result["rate"], result["seam"], height=160),
                            key=f"compare_wave_{result['name']}")
            st.plotly_chart(cqt_figure(take, result["rate"], result["seam"], height=280, colorbar=False), theme=None,
                            key=f"compare_cqt_{result['name']}")
