"""The lent-GPU script runs on the CPU first: a GPU session is too rare to find its bugs there."""
import subprocess
import sys
from pathlib import Path

from wavenet.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def gpu_train(score_cache: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "tools/gpu_train.py", "--pack", str(score_cache / "notes.npz"),
               "--bank", str(score_cache / "bank16k.npz"), "--work", str(tmp_path / "work"),
               "--out", str(tmp_path / "out"), "--hours", "0.05", "--workers", "1", "--residual", "4",
               "--skip", "8", "--batch-size", "2", "--output-length", "400", "--checkpoint-every", "5",
               "--compile", "off", *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_it_renders_trains_for_its_budget_and_leaves_weights_in_out(score_cache, tmp_path):
    done = gpu_train(score_cache, tmp_path, "--budget", "8", "--augment", "recording", "--precision", "bf16",
                     "--hold-out", "")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert out == ["config.json", "model.safetensors", "tb_events.tfevents", "trainer.pt"]
    model, info = load_checkpoint(tmp_path / "out")
    assert model.config.residual_channels == 4 and info["training"]["steps"] >= 5
    assert info["training"]["precision"] == "bf16" and info["training"]["augment"] == "recording"

    (tmp_path / "out").rename(tmp_path / "first call")  # carried to the lease's second call
    second = gpu_train(score_cache, tmp_path, "--budget", "4", "--hold-out", "", "--init-from",
                       str(tmp_path / "first call"), "--keep-optimizer")
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    training = load_checkpoint(tmp_path / "out")[1]["training"]
    assert training["init_from"] == str(tmp_path / "first call") and training["keep_optimizer"]


def test_it_stops_at_once_when_the_evaluation_set_was_not_carried(score_cache, tmp_path):
    done = gpu_train(score_cache, tmp_path, "--budget", "8", "--hold-out", str(tmp_path / "missing.json"))
    assert done.returncode != 0 and "not found" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_it_stops_at_once_when_the_optimizer_it_should_continue_was_not_carried(score_cache, tmp_path):
    weights = tmp_path / "weights only"  # as a shipped checkpoint comes in a fresh clone
    weights.mkdir()
    for name in ("config.json", "model.safetensors"):
        (weights / name).write_bytes((ROOT / "checkpoints" / "piano-small" / name).read_bytes())
    done = gpu_train(score_cache, tmp_path, "--budget", "8", "--init-from", str(weights), "--keep-optimizer",
                     "--hold-out", "")
    assert done.returncode != 0 and "carry it" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()  # nothing rendered
