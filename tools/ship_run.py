"""Ship a training run that continued a shipped checkpoint (`--init-from`) back into it.

    python tools/ship_run.py runs/piano-small-s2 checkpoints/piano-small --history "..."
    python tools/ship_run.py /work/.device/1 checkpoints/piano-small --history "..."  # a lease's $OUT

Copies the run's weights (last/ or best/), makes the checkpoint's training summary cumulative
(steps, samples, hours of audio, wall time, devices) and appends the run's curves to the
checkpoint's TensorBoard log with its steps and hours shifted after the earlier training, so
the training monitor shows the whole history as one curve. The run's optimizer state goes beside
the weights as trainer.pt, which git ignores (weights are committed, optimizer state is not), so
a later stage in this workspace can continue it (`wavenet train --init-from CHECKPOINT
--keep-optimizer`). Then refresh the model card with tools/make_card.py.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402


def cumulative(before: dict, after: dict, history: str) -> dict:
    """The checkpoint's training summary once the run's training is added to it."""
    total = {key: value for key, value in after.items() if not key.startswith("init_")}  # the totals say it all
    for key in ("steps", "samples_seen", "audio_hours_seen", "wall_seconds"):
        total[key] = round((before.get(key) or 0) + (after.get(key) or 0), 4)
    devices = [d for d in (*(before.get("device") or "").split(" + "), after.get("device")) if d]
    total["device"] = " + ".join(dict.fromkeys(devices))
    total["history"] = "; ".join(h for h in (before.get("history"), history) if h)
    return total


def weights_and_events(run: Path, which: str) -> tuple[Path, list[Path]]:
    """Where the weights and the TensorBoard events are: a run folder, or a GPU lease's flat $OUT."""
    if (run / "model.safetensors").exists():  # tools/gpu_train.py's export
        return run, sorted(run.glob("*.tfevents"))
    return run / which, sorted((run / "tb").glob("events.out.tfevents.*"))


def append_curves(events_files: list[Path], checkpoint: Path, name: str, step_offset: int,
                  hours_offset: float) -> int:
    """Re-log the run's scalars after the checkpoint's own; returns how many were written."""
    writer = SummaryWriter(str(checkpoint / "tb"), filename_suffix=f".{name}")
    written = 0
    for events in events_files:
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0}).Reload()
        for tag in accumulator.Tags()["scalars"]:
            for event in accumulator.Scalars(tag):
                value = event.value + (hours_offset if tag == "audio_hours_seen" else 0.0)
                writer.add_scalar(tag, value, event.step + step_offset, walltime=event.wall_time)
                written += 1
    writer.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("checkpoint")
    parser.add_argument("--which", choices=("last", "best"), default="last")
    parser.add_argument("--history", default="", help="how the run trained, in words")
    args = parser.parse_args()
    run, checkpoint = Path(args.run), Path(args.checkpoint)
    source, events_files = weights_and_events(run, args.which)
    before = json.loads((checkpoint / "config.json").read_text())
    after = json.loads((source / "config.json").read_text())
    if before["model"] != after["model"]:
        sys.exit("error: the run's architecture differs from the checkpoint's")
    previous = before.get("training", {})
    written = append_curves(events_files, checkpoint, run.name, int(previous.get("steps") or 0),
                            float(previous.get("audio_hours_seen") or 0.0))
    shutil.copy2(source / "model.safetensors", checkpoint / "model.safetensors")
    if (source / "trainer.pt").exists():
        shutil.copy2(source / "trainer.pt", checkpoint / "trainer.pt")
    else:  # moments of earlier weights would not fit these
        (checkpoint / "trainer.pt").unlink(missing_ok=True)
    before["training"] = cumulative(previous, after.get("training", {}), args.history)
    before["data"] = after.get("data", before.get("data"))
    before["created"] = after.get("created", before.get("created"))
    (checkpoint / "config.json").write_text(json.dumps(before, indent=1))
    print(json.dumps({"training": before["training"], "scalars_appended": written}, indent=1))


if __name__ == "__main__":
    main()
