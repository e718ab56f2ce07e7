import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wavenet.checkpoint import save_checkpoint
from wavenet.model import WaveNet, WaveNetConfig, grow

ROOT = Path(__file__).resolve().parent.parent


def cli(*args):
    result = subprocess.run([sys.executable, "-m", "wavenet", *map(str, args)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ck") / "tiny"
    config = WaveNetConfig(layers=4, stacks=2, residual_channels=8, dilation_channels=8, skip_channels=16)
    return save_checkpoint(folder, WaveNet(config), {"steps": 5, "val_loss": 5.5}, data="unit test")


def test_info_prints_architecture_receptive_field_and_training(checkpoint):
    code, out, _ = cli("info", checkpoint)
    assert code == 0
    assert "4 layers × 2 stacks" in out and "30 samples = 1.9 ms at 16000 Hz" in out and "steps" in out


def test_generate_writes_the_take_and_a_sidecar_that_reproduces_it(checkpoint, tmp_path):
    code, out, err = cli("generate", checkpoint, "--seconds", "0.25", "--seed", "4", "--out", tmp_path / "a.wav")
    assert code == 0, err
    audio, rate = sf.read(tmp_path / "a.wav", dtype="int16")
    assert rate == 16000 and len(audio) == 4000
    sidecar = json.loads((tmp_path / "a.wav.json").read_text())
    assert sidecar["settings"]["seed"] == 4 and sidecar["settings"]["temperature"] == 1.0
    cli("generate", checkpoint, "--seconds", "0.25", "--seed", "4", "--out", tmp_path / "b.flac")
    assert np.array_equal(sf.read(tmp_path / "b.flac", dtype="int16")[0], audio)
    assert "real time" in err


def test_generate_continues_a_clip_and_makes_variations(checkpoint, tmp_path, piano_clip):
    code, _, err = cli("generate", checkpoint, "--prime", piano_clip, "--prime-seconds", "0.5", "--include-prime",
                       "--seconds", "0.1", "--variations", "2", "--out", tmp_path / "c.wav")
    assert code == 0, err
    for name in ("c_v1.wav", "c_v2.wav"):
        assert len(sf.read(tmp_path / name)[0]) == 8000 + 1600


def test_eval_reports_nats_and_bits_per_sample(checkpoint, piano_clip):
    code, out, _ = cli("eval", checkpoint, piano_clip)
    assert code == 0
    nats, bits = [float(w) for w in out.split() if w.replace(".", "").isdigit()][:2]
    assert bits == pytest.approx(nats / np.log(2), rel=1e-3) and 7.0 < bits < 8.5  # untrained: near uniform


@pytest.mark.parametrize("args, message", [
    (["info", "no-such-model"], "no checkpoint 'no-such-model'"),
    (["eval", "CK", "missing.wav"], "missing.wav: no such file"),
    (["generate", "CK", "--out", "x.mp4"], "--out must end in .wav or .flac"),
    (["generate", "CK", "--out", "x.wav", "--first-sample", "999"], "first sample must be in 0..255"),
    (["generate", "CK", "--out", "x.wav", "--seconds", "-1"], "must be above 0"),
    (["generate", "CK", "--out", "x.wav", "--seconds", "20", "--max-seconds", "10"], "at most 10 seconds"),
    (["generate", "CK", "--out", "x.wav", "--seed", "-3"], "seed must be in"),
    (["import-seed", "missing.pth", "out"], "missing.pth: no such file"),
])
def test_bad_input_is_one_clear_line_and_a_non_zero_exit(checkpoint, tmp_path, args, message):
    args = [str(checkpoint) if a == "CK" else a for a in args]
    args = [str(tmp_path / a) if a.startswith(("x.", "missing.")) else a for a in args]
    code, _, err = cli(*args)
    assert code != 0 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # argparse adds a usage line


def test_a_grown_model_starts_out_computing_what_the_small_one_computes():
    torch.manual_seed(0)
    widths = {"residual_channels": 4, "dilation_channels": 4, "skip_channels": 8}
    small = WaveNet(WaveNetConfig.preset("small", **widths)).eval()
    medium = grow(small, WaveNetConfig.preset("medium", **widths)).eval()
    x = torch.randint(0, 256, (1, 2000))
    with torch.no_grad():
        assert torch.allclose(small(x), medium(x), atol=1e-5)
    with pytest.raises(ValueError):
        grow(small, WaveNetConfig.preset("medium", residual_channels=8))


def test_grow_writes_a_deeper_checkpoint_that_carries_the_training_it_started_from(checkpoint, tmp_path):
    from wavenet.checkpoint import load_checkpoint

    code, out, err = cli("grow", checkpoint, "medium", tmp_path / "medium")
    assert code == 0, err
    assert "13 layers × 5 stacks" in out
    small, _ = load_checkpoint(checkpoint)
    medium, info = load_checkpoint(tmp_path / "medium")
    x = torch.randint(0, 256, (1, 3000))
    with torch.no_grad():
        assert torch.allclose(small(x), medium(x), atol=1e-5)
    assert info["training"]["steps"] == 5 and "grown from tiny" in info["training"]["history"]
    assert info["data"] == "unit test"
    code, _, err = cli("grow", checkpoint, "medium", tmp_path / "medium")
    assert code == 2 and "exists" in err and "--replace" in err
    assert cli("grow", checkpoint, "large", tmp_path / "medium", "--replace")[0] == 0
    assert load_checkpoint(tmp_path / "medium")[0].config.layers == 14


@pytest.mark.parametrize("args, message", [
    (["generate", "CK", "--out", "x.wav", "--seconds", "inf"], "must be a finite number"),
    (["generate", "CK", "--out", "x.wav", "--seconds", "nan"], "must be a finite number"),
    (["generate", "CK", "--out", "x.wav", "--device", "cuda"], "no CUDA device"),
    (["generate", "CK", "--out", "x.wav", "--device", "toaster"], "unknown device"),
    (["generate", "CK", "--seconds", "0.01", "--out", "/proc/nope/x.wav"], "error: "),
])
def test_impossible_values_devices_and_unwritable_outputs_are_one_line_errors(checkpoint, tmp_path, args, message):
    args = [str(checkpoint) if a == "CK" else a for a in args]
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    code, _, err = cli(*args)
    assert code == 2 and message in err and "Traceback" not in err


def test_resuming_a_run_keeps_its_precision_and_augmentation_unless_told_otherwise(tmp_path):
    from argparse import Namespace

    from wavenet.cli import kept_on_resume

    (tmp_path / "run.json").write_text(json.dumps({"settings": {"precision": "bf16", "augment": "recording"}}))
    resumed = Namespace(precision=None, augment=None, resume=True, run=str(tmp_path))
    assert kept_on_resume(resumed, "precision", "float32") == "bf16"
    assert kept_on_resume(resumed, "augment", "none") == "recording"
    told = Namespace(precision="float32", augment="none", resume=True, run=str(tmp_path))
    assert kept_on_resume(told, "precision", "bf16") == "float32" and kept_on_resume(told, "augment", "x") == "none"
    fresh = Namespace(precision=None, augment=None, resume=False, run=str(tmp_path))
    assert kept_on_resume(fresh, "precision", "float32") == "float32"
    assert kept_on_resume(fresh, "augment", "none") == "none"
    (tmp_path / "run.json").write_text(json.dumps({"settings": {"augment_share": 0.1}}))
    assert kept_on_resume(Namespace(augment_share=None, resume=True, run=str(tmp_path)), "augment_share", 0.5) == 0.1
    (tmp_path / "run.json").write_text(json.dumps({"settings": {"history_noise": 2.0}}))
    assert kept_on_resume(resumed_noise := Namespace(history_noise=None, resume=True, run=str(tmp_path)),
                          "history_noise", 0.0) == 2.0
    resumed_noise.history_noise = 0.0  # told 0 on the command line: off, though 0 is falsy
    assert kept_on_resume(resumed_noise, "history_noise", 0.0) == 0.0
