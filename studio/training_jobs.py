"""Training runs started from the studio: a background `python -m wavenet train` per run.

The process outlives page reruns and even the studio (it is its own session); the run folder
records its pid in `process.json`, so any studio process can show it as running and stop it.
Stop sends SIGTERM: the trainer finishes its step, writes a checkpoint and exits.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st

from wavenet.augment import AUGMENTATIONS
from wavenet.checkpoint import CheckpointError, grow_checkpoint, read_info, resolve
from wavenet.model import PRESETS, WaveNetConfig
from wavenet.train import PRECISIONS, process_alive

PROJECT = Path(__file__).resolve().parent.parent
PROCESS_FILE = "process.json"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_children: dict[int, subprocess.Popen] = {}  # reaped here so they do not linger as zombies


@dataclass
class TrainingRequest:
    name: str
    data: Path
    preset: str
    residual_channels: int
    skip_channels: int
    minutes: float
    init_from: str  # "" or a checkpoint name
    threads: int
    device: str
    precision: str = PRECISIONS[0]
    augment: str = AUGMENTATIONS[0]
    history_noise: float = 0.0

    def problems(self, runs_dir: Path) -> list[str]:
        found = []
        if not NAME.match(self.name):
            found.append("Name the run with letters, digits, '.', '_' or '-' (up to 64 characters).")
        elif (runs_dir / self.name).exists() or (runs_dir / f"{self.name}.log").exists():
            found.append(f"A run called {self.name!r} exists already: choose another name.")
        if not (self.data / "manifest.json").exists():
            found.append("Choose a prepared dataset (a folder made by `python -m wavenet prepare` or `corpus`).")
        if self.init_from:
            found += self.starting_problems()
        return found

    def starting_problems(self) -> list[str]:
        """Why the chosen size and widths cannot start from the chosen checkpoint (a checkpoint keeps its
        widths and can only grow), so that no setting is silently ignored."""
        try:
            shape = self.starting_shape()
        except CheckpointError as error:
            return [str(error)]
        name, found = Path(self.init_from).name, []
        if (shape.residual_channels, shape.skip_channels) != (self.residual_channels, self.skip_channels):
            found.append(f"{name} has {shape.residual_channels} residual and {shape.skip_channels} skip channels: "
                         "set the widths to those to start from it, or start from random weights.")
        fitting = [preset for preset, (layers, _) in PRESETS.items() if layers >= shape.layers]
        if self.preset not in fitting:
            found.append(f"{name} has {shape.layers} layers per stack, more than {self.preset}: start from it as "
                         f"{' or '.join(fitting) or 'its own size'}, or from random weights.")
        return found

    def starting_shape(self) -> WaveNetConfig:
        return WaveNetConfig.from_dict(read_info(resolve(self.init_from))["model"])

    def grows(self) -> bool:
        """Whether the chosen size is not the starting checkpoint's own: the run starts from a grown copy."""
        if not self.init_from:
            return False
        shape = self.starting_shape()
        return PRESETS[self.preset] != (shape.layers, shape.stacks)

    def command(self, runs_dir: Path) -> list[str]:
        command = [sys.executable, "-m", "wavenet", "train", "--preset", self.preset, "--data", str(self.data),
                   "--run", str(runs_dir / self.name), "--residual-channels", str(self.residual_channels),
                   "--dilation-channels", str(self.residual_channels), "--skip-channels", str(self.skip_channels),
                   "--time-budget", str(round(self.minutes * 60)), "--device", self.device,
                   "--val-every", "100", "--checkpoint-every", "100", "--sample-seconds", "1",
                   "--precision", self.precision, "--augment", self.augment,
                   "--history-noise", f"{self.history_noise:g}"]
        return command + (["--init-from", self.init_from] if self.init_from else [])


def start(request: TrainingRequest, runs_dir: Path) -> int:
    """Launch the run in the background (its own session, output in runs/NAME.log); the pid."""
    run = runs_dir / request.name
    run.mkdir(parents=True)
    return _launch(run, with_grown_weights(request, run).command(runs_dir), request.threads)


def with_grown_weights(request: TrainingRequest, run: Path) -> TrainingRequest:
    """The request, starting from a copy of its checkpoint grown to the chosen size (kept in the run's
    `grown/`) where the sizes differ."""
    if not request.grows():
        return request
    return replace(request, init_from=str(grow_checkpoint(request.init_from, request.preset, run / "grown")))


def resume(run: Path, minutes: float) -> int:
    """Continue a stopped studio run from its last checkpoint for `minutes` more of training."""
    record = json.loads((run / PROCESS_FILE).read_text())
    trained = json.loads((run / "last" / "config.json").read_text())["training"]["wall_seconds"]
    command = list(record["command"])
    command[command.index("--time-budget") + 1] = str(round(trained + minutes * 60))
    if "--resume" not in command:
        command.append("--resume")
    return _launch(run, command, record.get("threads", 1))


def _launch(run: Path, command: list[str], threads: int) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with open(run.parent / f"{run.name}.log", "ab") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    _children[child.pid] = child
    (run / PROCESS_FILE).write_text(json.dumps({"pid": child.pid, "command": command, "threads": threads,
                                                "started": time.time()}, indent=1))
    return child.pid


def running_pid(run: Path) -> int | None:
    """The pid of the run's training process while it is alive (not a finished or reused pid)."""
    record = run / PROCESS_FILE
    if not record.exists():
        return None
    pid = int(json.loads(record.read_text())["pid"])
    if pid in _children and _children[pid].poll() is not None:
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if process_alive(pid) and b"wavenet" in command and b"train" in command else None


def stop(run: Path) -> None:
    pid = running_pid(run)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)


def log_tail(runs_dir: Path, name: str, lines: int = 6) -> str:
    """The last lines of the run's output, progress bars unrolled."""
    log = runs_dir / f"{name}.log"
    if not log.exists():
        return ""
    text = log.read_bytes()[-20000:].decode(errors="replace").replace("\r", "\n")
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


def training_hours(dataset: Path) -> float | None:
    """Hours of training audio in a prepared dataset; None where a run could not or should not train on
    it: no training clip (every clip on the validation side), made for evaluation only, or no readable
    manifest."""
    try:
        manifest = json.loads((dataset / "manifest.json").read_text())
        trainable = manifest.get("train_clips", 0) > 0 and not manifest.get("evaluation_only", False)
        return float(manifest["train_hours"]) if trainable else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def amount_of_audio(hours: float) -> str:
    """Hours as "7.4 h", or as minutes where that would read 0.0 h (a few clips of one's own)."""
    return f"{hours:.1f} h" if hours >= 0.1 else f"{hours * 60:.1f} min"


def datasets(data_dir: Path = Path("data")) -> dict[Path, float]:
    """Prepared datasets a run can train on, with their hours of training audio, the most first."""
    hours = {p.parent: training_hours(p.parent) for p in data_dir.glob("*/manifest.json")}
    trainable = {path: h for path, h in hours.items() if h is not None}
    return dict(sorted(trainable.items(), key=lambda item: (-item[1], item[0].name)))


def launch_form(runs_dir: Path, checkpoints: list[str], devices: list[str]) -> None:
    """The "start a run" form; starts the process and reruns the page on success."""
    found = datasets()
    if not found:
        st.info("No prepared dataset in data/ yet. Make one with `python -m wavenet corpus data/corpus` and "
                "`python -m wavenet prepare data/corpus data/corpus16k`, or prepare your own recordings.")
        return
    with st.form("new_training_run"):
        left, middle, right = st.columns(3)
        name = left.text_input("Run name", value=time.strftime("run-%Y%m%d-%H%M"), key="new_run_name")
        data = middle.selectbox("Dataset", list(found), format_func=lambda p: f"{p.name} ({amount_of_audio(found[p])} to train on)",
                                key="new_run_data")
        preset = right.selectbox("Size", list(PRESETS), key="new_run_preset",
                                 format_func=lambda p: f"{p} ({PRESETS[p][0]}×{PRESETS[p][1]})")
        residual = left.select_slider("Residual = dilation channels", [4, 8, 16, 32, 64], value=32, key="new_run_residual")
        skip = middle.select_slider("Skip channels", [8, 16, 32, 64, 128, 256, 512, 1024], value=128, key="new_run_skip")
        minutes = right.number_input("Time budget (minutes)", 0.5, 7 * 24 * 60.0, 60.0, key="new_run_minutes")
        init_from = left.selectbox("Start from", [""] + checkpoints, key="new_run_init",
                                   format_func=lambda c: c or "random weights",
                                   help="Its own size fine-tunes it; a larger size grows it first (the new "
                                        "layers start silent; large keeps 4 of a 5-stack model's stacks and must "
                                        "be trained back). Widths must be the checkpoint's.")
        threads = middle.number_input("CPU threads", 1, os.cpu_count() or 1, 1, key="new_run_threads")
        device = right.selectbox("Device", devices, key="new_run_device")
        precision = left.selectbox("Precision", PRECISIONS, key="new_run_precision",
                                   help="bf16 computes in bfloat16 (weights stay float32): faster on recent GPUs "
                                        "and on CPUs with AVX512-BF16 or AMX; `python -m wavenet bench train` "
                                        "measures it on this machine. Its gradient is taken at weights rounded to "
                                        "bfloat16: fine-tune a trained checkpoint in float32.")
        augment = middle.selectbox("Augmentation", AUGMENTATIONS, key="new_run_augment",
                                   help="recording: half the training crops go through a random room, EQ, "
                                        "low-pass, noise and level, so the model also knows real recordings "
                                        "(the corpus renders are dry and noiseless).")
        history_noise = right.number_input("History noise (μ-law classes)", 0.0, 8.0, 0.0, 0.5,
                                           key="new_run_history_noise",
                                           help="Shows the model a noisy past (up to this many classes, targets "
                                                "clean), as its own samples will be when it generates at "
                                                "temperature 1. Sampling adds about 1.5 classes; 2 made piano-small's "
                                                "takes fade to silence, 1 did not make notes appear.")
        submitted = st.form_submit_button("▶ Start training", type="primary")
    if not submitted:
        return
    request = TrainingRequest(name.strip(), Path(data), preset, residual, skip, float(minutes), init_from,
                              int(threads), device, precision, augment, float(history_noise))
    problems = request.problems(runs_dir)
    for problem in problems:
        st.error(problem)
    if problems:
        return
    start(request, runs_dir)
    st.session_state["training_run"] = request.name
    st.rerun()
