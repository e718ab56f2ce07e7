"""WaveNet Piano Studio (minimal page until the full studio lands): pick a checkpoint, generate, listen."""
import streamlit as st

from wavenet.audio import audio_bytes
from wavenet.checkpoint import CheckpointError, list_checkpoints, load_checkpoint
from wavenet.sampler import GenerationSettings, generate

st.set_page_config(page_title="WaveNet Piano Studio", page_icon="🎹")
st.title("🎹 WaveNet Piano Studio")


@st.cache_resource
def cached_model(name: str):
    return load_checkpoint(name)


names = list_checkpoints()
if not names:
    st.info("No checkpoints in checkpoints/ yet. Train one with `python -m wavenet train`.")
    st.stop()
name = st.selectbox("Checkpoint", names)
try:
    model, info = cached_model(name)
except CheckpointError as error:
    st.error(str(error))
    st.stop()
config = model.config
st.caption(f"{config.layers}×{config.stacks} layers, receptive field {config.receptive_field_ms:.0f} ms, "
           f"{model.parameter_count():,} parameters")
seconds = st.slider("Length (s)", 0.1, 2.0, 0.5, 0.1)
temperature = st.slider("Temperature (0 = greedy)", 0.0, 1.5, 1.0, 0.05)
seed = st.number_input("Seed", 0, 2**31 - 1, 0)
if st.button("Generate", type="primary"):
    with st.spinner("Sampling…"):
        take = generate(model, GenerationSettings(seconds=seconds, temperature=temperature, seed=int(seed)))[0]
    st.audio(audio_bytes(take, config.sample_rate), format="audio/wav")
