"""Loaded checkpoints, cached once per process (per checkpoint and device), and their facts."""
from __future__ import annotations

import math
from pathlib import Path

import streamlit as st
import torch

from wavenet.checkpoint import (DEFAULT_CHECKPOINT, CheckpointError, list_checkpoints,
                                load_checkpoint, read_info, resolve)
from wavenet.model import WaveNet, WaveNetConfig
from wavenet.train import KEPT_CHECKPOINTS

# Takes sample on one core each (the compiled step); PyTorch work in the studio (priming a
# continuation) ran 3-9x slower on two threads than on one while a training run kept the
# other core busy, and several sessions may generate at once.
torch.set_num_threads(1)


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@st.cache_resource(show_spinner="Loading the checkpoint…")
def cached_model(name: str, on_device: str) -> tuple[WaveNet, dict]:
    """One shared model per checkpoint and device; generations keep their state elsewhere."""
    return load_checkpoint(name, on_device)


def load(name: str) -> tuple[WaveNet, dict]:
    return cached_model(name, device())


HELD_OUT, OWN_CROPS = "held-out renders", "the run's own validation crops"  # where a card's bits come from


def facts(model: WaveNet, info: dict) -> dict[str, str]:
    """What the sidebar and the compare table show about a checkpoint."""
    config, evaluation = model.config, info.get("evaluation") or {}
    training = info.get("training") or {}
    bits = card_validation_bits(info)
    bits_source = (f"{HELD_OUT}, model card" if evaluation.get("val_bits_per_sample") else
                   f"{OWN_CROPS}: not comparable with a model card's")
    speed = evaluation.get("generation_samples_per_s")
    return {
        "size": f"{config.layers}×{config.stacks} layers, R{config.residual_channels} S{config.skip_channels}",
        "sample rate": f"{config.sample_rate:,} Hz",
        "receptive field": f"{config.receptive_field_ms:.0f} ms ({config.receptive_field:,} samples)",
        "parameters": f"{model.parameter_count():,}",
        "validation bits/sample": f"{bits:.3f} ({bits_source})" if bits else "—",
        "speed (model card)": (f"{speed:,} samples/s ({speed / config.sample_rate:.2f}× real time) on one core of "
                               f"an idle {evaluation.get('measured_on', 'CPU')}") if speed else "—",
        "audio seen in training": audio_seen(training, config.sample_rate),
        "sounds like": evaluation.get("sounds_like", "—"),  # heard by whoever wrote the model card
    }


def bits_and_source(bits_fact: str) -> tuple[str, str]:
    """facts()' validation bits split for a table: ('2.477', 'held-out renders') or ('—', '')."""
    number, _, source = bits_fact.partition(" (")
    return number, next((name for name in (HELD_OUT, OWN_CROPS) if source.startswith(name)), "")


def audio_seen(training: dict, sample_rate: int) -> str:
    """'66.1 h', or '0.2 h in this run, after piano-small's 66.1 h' for a run started from other weights."""
    hours = f"{training.get('audio_hours_seen', 0):.1f} h"
    if not training.get("init_from") or training.get("init_samples_seen") is None:
        return hours
    before = hours_before(training, sample_rate)
    return f"{hours} in this run, after {weights_name(training['init_from'])}'s {before:.1f} h"


def hours_before(training: dict, sample_rate: int) -> float:
    """Hours of audio a run's starting weights had heard (`--init-from`), which its own counts leave out."""
    return (training.get("init_samples_seen") or 0) / sample_rate / 3600


def weights_name(init_from: str) -> str:
    """A run's starting weights by name: 'piano-small' for checkpoints/piano-small, 'my-run' for runs/my-run/best."""
    path = Path(init_from)
    return path.parent.name if path.name in ("best", "last") else path.name


def checkpoint_names() -> list[str]:
    """Shipped checkpoints, the default first and the others from the lowest validation bits/sample,
    then the best checkpoint of each local training run."""
    runs = sorted(str(p) for p in Path("runs").glob("*/best") if (p / "config.json").is_file())
    return sorted(list_checkpoints(), key=lambda name: (name != DEFAULT_CHECKPOINT, validation_bits(name))) + runs


def kept_checkpoint_names() -> list[str]:
    """Every checkpoint the local runs kept (`--keep-checkpoints`), in step order: a run's takes
    change from one checkpoint to the next, so they are worth comparing (not offered in the sidebar:
    a run keeps dozens)."""
    return [str(p) for p in sorted(Path("runs").glob(f"*/{KEPT_CHECKPOINTS}/step*[0-9]"))
            if (p / "config.json").is_file()]


def display_name(name: str) -> str:
    """'piano-small', 'my-run (run's best)' for runs/my-run/best, 'my-run, step 125' for a kept checkpoint:
    short enough for the sidebar's box."""
    path = Path(name)
    if len(path.parts) == 3 and path.parts[0] == "runs" and path.name == "best":
        return f"{path.parts[1]} (run's best)"
    if len(path.parts) == 4 and path.parts[0] == "runs" and path.parts[2] == KEPT_CHECKPOINTS:
        return f"{path.parts[1]}, step {int(path.name.removeprefix('step'))}"
    return name


def picker_label(name: str) -> str:
    """The name with the hours of audio it trained on: a larger model's name promises more than an
    hour of training delivers, so a musician picking by name alone would pick wrongly."""
    info = card(name)
    training = (info or {}).get("training") or {}
    if "samples_seen" not in training:
        return display_name(name)
    sample_rate = WaveNetConfig.from_dict(info["model"]).sample_rate
    hours = training["samples_seen"] / sample_rate / 3600 + hours_before(training, sample_rate)
    return f"{display_name(name)} · {hours:,.1f} h trained"


def validation_bits(name: str) -> float:
    """A checkpoint's validation bits/sample from its card (infinite when it has none)."""
    info = card(name)
    return (card_validation_bits(info) if info else None) or math.inf


def card(name: str) -> dict | None:
    """A checkpoint's card (None when missing or damaged), read once per version of it rather than
    on every rerun of every page."""
    try:
        folder = resolve(name)
    except CheckpointError:
        return None
    return _read_card(folder, (folder / "config.json").stat().st_mtime)


@st.cache_data(show_spinner=False)
def _read_card(folder: Path, modified: float) -> dict | None:
    try:
        return read_info(folder)
    except CheckpointError:
        return None


def card_validation_bits(info: dict) -> float | None:
    """Validation bits/sample as its card gives it: measured at evaluation, else logged in training."""
    bits = (info.get("evaluation") or {}).get("val_bits_per_sample") or \
        (info.get("training") or {}).get("val_bits_per_sample")
    return float(bits) if bits else None
