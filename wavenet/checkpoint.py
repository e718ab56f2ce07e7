"""Checkpoints: a folder with `model.safetensors` + `config.json`, found by name or path.

`config.json` holds {"model": WaveNetConfig fields, "training": summary, "data": description,
"created": ISO time, "licence": text}. Nothing here unpickles untrusted data: weights are
safetensors, and the reference code's `.pth` is read with `torch.load(weights_only=True)`.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import torch

from wavenet.model import WaveNet, WaveNetConfig, grow

CHECKPOINTS_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
DEFAULT_CHECKPOINT = "piano-small"  # what the studio and the API open with


class CheckpointError(ValueError):
    """A checkpoint that cannot be found or loaded, with a message meant for the user."""


def resolve(name_or_path: str | Path) -> Path:
    """A shipped checkpoint's name (`piano-small`) or any checkpoint folder's path -> its folder."""
    path = Path(name_or_path)
    for candidate in (path, CHECKPOINTS_DIR / str(name_or_path)):
        if candidate.is_file() and candidate.name in (WEIGHTS, CONFIG):
            candidate = candidate.parent
        if (candidate / CONFIG).is_file():
            return candidate
    shipped = ", ".join(list_checkpoints()) or "none"
    raise CheckpointError(f"no checkpoint {str(name_or_path)!r} (shipped: {shipped})")


def list_checkpoints() -> list[str]:
    """Names of the checkpoints shipped under checkpoints/."""
    if not CHECKPOINTS_DIR.is_dir():
        return []
    return sorted(p.name for p in CHECKPOINTS_DIR.iterdir() if (p / CONFIG).is_file())


def read_info(folder: Path) -> dict:
    try:
        info = json.loads((Path(folder) / CONFIG).read_text())
        WaveNetConfig.from_dict(info["model"])
        return info
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{folder}/{CONFIG} is damaged or not a WaveNet checkpoint ({error})") from None


def load_checkpoint(name_or_path: str | Path, device: str | torch.device = "cpu") -> tuple[WaveNet, dict]:
    """Load a checkpoint's model (in eval mode) and its info dict; clear errors for damaged files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = resolve(name_or_path)
    info = read_info(folder)
    config = WaveNetConfig.from_dict(info["model"])
    try:
        state = load_file(str(folder / WEIGHTS), device=str(device))
    except FileNotFoundError:
        raise CheckpointError(f"{folder} has no {WEIGHTS}") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{folder}/{WEIGHTS} is truncated or corrupt ({error})") from None
    model = WaveNet(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{folder}/{WEIGHTS} does not match its config.json ({first})") from None
    return model.to(device).eval(), info


def save_checkpoint(folder: str | Path, model: WaveNet, training: dict | None = None, data: str = "",
                    licence: str = "", extra_files: dict[str, bytes] | None = None) -> Path:
    """Write a checkpoint folder atomically: a temporary folder renamed over the old one."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp / WEIGHTS))
    info = {"model": model.config.to_dict(), "training": training or {}, "data": data,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "licence": licence}
    (tmp / CONFIG).write_text(json.dumps(info, indent=1))
    for name, content in (extra_files or {}).items():
        (tmp / name).write_bytes(content)
    replace_folder(tmp, folder)
    return folder


def replace_folder(new: Path, target: Path) -> None:
    """Swap `new` into `target`; a kill at any point leaves `target` or `target.old` complete."""
    old = target.with_name(target.name + ".old")
    if target.exists():  # else `old` may be the only complete copy (an earlier swap was cut short)
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)


def recover_folder(target: Path) -> Path | None:
    """The complete copy of `target` after an interrupted swap, or None."""
    if target.exists():
        return target
    old = target.with_name(target.name + ".old")
    return old if old.exists() else None


def grow_checkpoint(source: str | Path, preset: str, out: str | Path, replace: bool = False) -> Path:
    """Write a deeper checkpoint (`wavenet.model.grow`) that starts from `source`'s training.

    The new checkpoint keeps the source's training summary, data and TensorBoard log, with a line
    of history saying how it was grown, so its card and the training monitor show what it has heard.
    """
    source_folder = resolve(source)
    out = Path(out)
    if out.resolve() == source_folder.resolve():
        raise CheckpointError("grow into another folder: the source's weights are still needed")
    if out.exists() and not replace:
        raise CheckpointError(f"{out} exists; choose another folder or pass --replace")
    model, info = load_checkpoint(source_folder)
    try:
        grown = grow(model, WaveNetConfig.preset(preset, **{
            name: getattr(model.config, name) for name in ("residual_channels", "dilation_channels",
                                                           "skip_channels", "classes", "sample_rate")}))
    except ValueError as error:
        raise CheckpointError(f"cannot grow {source_folder.name} into {preset}: {error}") from None
    old, new = model.config, grown.config
    how = "exactly (its extra layers start silent)" if new.stacks >= old.stacks else \
        f"keeping {new.stacks} of its {old.stacks} stacks (without the others it must be trained back)"
    training = dict(info.get("training", {}))
    training["history"] = "; ".join(h for h in (training.get("history"), (
        f"grown from {source_folder.name} ({old.layers}×{old.stacks}, {training.get('samples_seen', 0):.3g} samples) "
        f"to {new.layers}×{new.stacks} {how}")) if h)
    save_checkpoint(out, grown, training=training, data=info.get("data", ""), licence=info.get("licence", ""))
    if (source_folder / "tb").is_dir():
        shutil.copytree(source_folder / "tb", out / "tb")
    return out


# ---------------------------------------------------------------- the reference code's .pth


def import_reference(pth: str | Path, out: str | Path, layers: int = 13, stacks: int = 5,
                     sample_rate: int = 16000) -> Path:
    """Convert a checkpoint saved by the reference paper's code into ours."""
    try:
        saved = torch.load(str(pth), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{pth}: no such file") from None
    except Exception as error:  # noqa: BLE001 - any unreadable or unsafe pickle
        raise CheckpointError(f"{pth} is not a readable PyTorch checkpoint ({type(error).__name__})") from None
    state = saved.get("model_state_dict", saved) if isinstance(saved, dict) else None
    if not isinstance(state, dict) or "causal.weight" not in state:
        raise CheckpointError(f"{pth} has no reference WaveNet weights (expected 'model_state_dict' with 'causal')")
    count = len([k for k in state if re.fullmatch(r"filters\.\d+\.weight", k)])
    if count != layers * stacks:
        raise CheckpointError(f"{pth} has {count} layers, not {layers} × {stacks}; pass --layers/--stacks")
    causal = state["causal.weight"]
    if causal.shape[2] != 1:
        raise CheckpointError(f"{pth}: the input convolution has kernel {causal.shape[2]}, expected 1")
    config = WaveNetConfig(layers=layers, stacks=stacks, residual_channels=causal.shape[0],
                           dilation_channels=state["filters.0.weight"].shape[0],
                           skip_channels=state["skips.0.weight"].shape[0], classes=causal.shape[1],
                           sample_rate=sample_rate)
    model = WaveNet(config)

    def bias(name: str, size: int) -> torch.Tensor:
        return state.get(f"{name}.bias", torch.zeros(size))

    with torch.no_grad():
        model.embed.weight.copy_(causal[:, :, 0].T + bias("causal", causal.shape[0]))
        for i, layer in enumerate(model.layers):
            layer.dilated.weight.copy_(torch.cat([state[f"filters.{i}.weight"], state[f"gates.{i}.weight"]]))
            d = config.dilation_channels
            layer.dilated.bias.copy_(torch.cat([bias(f"filters.{i}", d), bias(f"gates.{i}", d)]))
            # The reference's last residual conv feeds nothing: ours has none.
            pairs = [(layer.skip, "skips")] + ([(layer.residual, "residuals")] if layer.residual is not None else [])
            for ours, theirs in pairs:
                ours.weight.copy_(state[f"{theirs}.{i}.weight"])
                ours.bias.copy_(bias(f"{theirs}.{i}", ours.weight.shape[0]))
        for ours, theirs in ((model.end1, "end1"), (model.end2, "end2")):
            ours.weight.copy_(state[f"{theirs}.weight"])
            ours.bias.copy_(bias(theirs, ours.weight.shape[0]))
    return save_checkpoint(out, model, training={"imported_from": str(pth)},
                           data="imported from the reference code's checkpoint")
