"""Reading training runs for the monitor: TensorBoard scalars, logged samples, activity."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ACTIVE_SECONDS = 120  # a run whose events changed this recently counts as running


@dataclass
class RunFolder:
    name: str
    path: Path  # the folder holding tb/ (a run, or a shipped checkpoint)

    @property
    def events(self) -> list[Path]:
        return sorted((self.path / "tb").glob("events.out.tfevents.*"))

    @property
    def process(self) -> int | None:
        """The pid of its training process when the studio started it and it still runs."""
        from studio.training_jobs import running_pid

        return running_pid(self.path)

    @property
    def started_here(self) -> bool:
        from studio.training_jobs import PROCESS_FILE

        return (self.path / PROCESS_FILE).exists()

    @property
    def active(self) -> bool:
        """Its process runs (runs started from the studio, or any run holding its folder's lock), or
        its logs changed lately (runs trained elsewhere and copied here, say)."""
        from wavenet.train import lock_holder

        if self.started_here and self.process is not None:
            return True
        if lock_holder(self.path) is not None:  # a CPU step can outlast the logs' quiet spells
            return True
        return not self.started_here and any(time.time() - p.stat().st_mtime < ACTIVE_SECONDS for p in self.events)

    def scalars(self) -> pd.DataFrame:
        """Columns: tag, step, value, wall_time (all event files together)."""
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        logs = []  # one frame per event file, in the order they were written
        for path in self.events:
            accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0}).Reload()
            rows = [(tag, e.step, e.value, e.wall_time) for tag in accumulator.Tags()["scalars"]
                    for e in accumulator.Scalars(tag)]
            logs.append(pd.DataFrame(rows, columns=["tag", "step", "value", "wall_time"]))
        frame = pd.DataFrame(columns=["tag", "step", "value", "wall_time"])
        for log in sorted((log for log in logs if len(log)), key=lambda log: log["wall_time"].min()):
            # A run killed and resumed from its last checkpoint starts a new file there: what the killed
            # process logged after that checkpoint was lost with it, so the new file replaces it.
            frame = pd.concat([frame[frame["step"] < log["step"].min()], log]) if len(frame) else log
        shipped = self.path / "config.json"
        if shipped.exists():  # a checkpoint's curves end at its weights, not at steps logged after them
            steps = json.loads(shipped.read_text()).get("training", {}).get("steps")
            frame = frame[frame["step"] <= steps] if steps else frame
        return frame.sort_values(["tag", "step"]).reset_index(drop=True)

    def samples(self) -> list[LoggedSample]:
        """The samples logged at checkpoints (step00002875.wav, with its CQT .png), newest first."""
        folder = self.path / "samples"
        wavs = sorted(folder.glob("*.wav"), reverse=True) if folder.is_dir() else []
        return [LoggedSample(step_label(w.stem), w, _existing(w.with_suffix(".png"))) for w in wavs]

    def examples(self) -> list[LoggedSample]:
        """A shipped checkpoint's example generations from its model card (example_unique.wav, ...)."""
        return [LoggedSample(w.stem.removeprefix("example_").replace("_", " "), w,
                             _existing(w.with_name(w.stem + "_cqt.png")))
                for w in sorted(self.path.glob("example_*.wav"))]

    def saved_steps(self) -> int | None:
        """The step of its last checkpoint, if it has one."""
        config = self.path / "last" / "config.json"
        return json.loads(config.read_text()).get("training", {}).get("steps") if config.exists() else None

    def hours_before(self) -> float:
        """Hours of audio its starting weights had heard (0 without a checkpoint or `--init-from`)."""
        from studio.models import hours_before

        config = self.path / "last" / "config.json"
        if not config.exists():
            return 0.0
        card = json.loads(config.read_text())
        return hours_before(card.get("training", {}), card.get("model", {}).get("sample_rate", 16000))

    def record(self) -> dict:
        """Its run.json: settings, model, data, processes ({} for a shipped checkpoint)."""
        run_file = self.path / "run.json"
        return json.loads(run_file.read_text()) if run_file.exists() else {}

    def settings(self) -> dict:
        return self.record().get("settings", {})

    def description(self) -> str:
        """How it was set up, in one line: a run's model and settings, or the totals of a shipped
        checkpoint (or of a run's last checkpoint, for runs brought back from a GPU machine)."""
        config_file = self.path / "config.json"
        if not config_file.exists():
            config_file = self.path / "last" / "config.json"
        record = self.record()
        if record:
            settings = record.get("settings", {})
            parts = [architecture(record.get("model", {})), step_size(settings, record.get("processes", 1)),
                     f"lr {settings.get('lr', 0):g}", settings.get("precision", "float32")]
            if settings.get("augment", "none") != "none":
                parts.append(f"{settings['augment']} augmentation")
            if settings.get("history_noise", 0):
                parts.append(f"history noise ≤ {settings['history_noise']:g} classes")
            if settings.get("init_from"):
                parts.append(f"from {settings['init_from']}")
            parts.append(f"on {record.get('data', '?')}")
            return " · ".join(parts)
        if config_file.exists():
            record = json.loads(config_file.read_text())
            training = record.get("training", {})
            return " · ".join([architecture(record.get("model", {})), f"{training.get('steps', 0):,} steps",
                               f"{in_words(training.get('samples_seen', 0))} samples",
                               f"trained on {hardware(training.get('device', ''))}"])
        return ""


@dataclass(frozen=True)
class LoggedSample:
    label: str
    wav: Path
    cqt: Path | None


def step_label(stem: str) -> str:
    """'step 2,875' from 'step00002875' (other names as they are)."""
    digits = stem.removeprefix("step")
    return f"step {int(digits):,}" if digits.isdigit() else stem


def step_size(settings: dict, processes: int) -> str:
    """'batch 2 × 16,000', or '256,000 samples a step (2 × 16,000 × 4 accumulated × 2 processes)'."""
    batch = f"{settings.get('batch_size')} × {settings.get('output_length', 0):,}"
    accumulate = settings.get("accumulate", 1)
    if accumulate == 1 and processes == 1:
        return f"batch {batch}"
    from wavenet.train import step_samples

    total = step_samples(settings, processes)
    factors = (f" × {accumulate} accumulated" if accumulate > 1 else "") + (f" × {processes} processes"
                                                                             if processes > 1 else "")
    return f"{total:,} samples a step ({batch}{factors})"


def in_words(count: float) -> str:
    """'5.05 billion', '728 million', '12,000': how a musician reads a count, not 5.05e+09."""
    for size, word in ((1e9, "billion"), (1e6, "million")):
        if count >= size:
            return f"{count / size:.3g} {word}"
    return f"{count:,.0f}"


def hardware(devices: str) -> str:
    """'NVIDIA H200, a CPU and NVIDIA H100' from a card's 'NVIDIA H200 + cpu + NVIDIA H100'."""
    names = [("a CPU" if name == "cpu" else name) for name in devices.split(" + ") if name] or ["unknown hardware"]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _existing(path: Path) -> Path | None:
    return path if path.exists() else None


def architecture(model: dict) -> str:
    """'10×5, residual 32, skip 128, 16 kHz' from a config's model section."""
    if not model:
        return "model unknown"
    return (f"{model.get('layers')}×{model.get('stacks')}, residual {model.get('residual_channels')}, "
            f"skip {model.get('skip_channels')}, {model.get('sample_rate', 0) / 1000:g} kHz")


def find_runs(runs_dir: Path = Path("runs"), checkpoints_dir: Path = Path("checkpoints")) -> list[RunFolder]:
    """Local runs (runs/*, also those just started) first, then the shipped checkpoints' training logs."""
    from studio.training_jobs import PROCESS_FILE

    found = [RunFolder(p.name, p) for p in sorted(runs_dir.glob("*"))
             if (p / "tb").is_dir() or (p / PROCESS_FILE).exists()]
    found += [RunFolder(f"{p.name} (shipped)", p) for p in sorted(checkpoints_dir.glob("*")) if (p / "tb").is_dir()]
    return found
