import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from wavenet.checkpoint import load_checkpoint
from wavenet.data import DataError, DatasetWriter, prepare
from wavenet.model import WaveNet, WaveNetConfig
from wavenet.train import Trainer, TrainingError, TrainSettings

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--preset", "small", "--residual-channels", "4", "--dilation-channels", "4", "--skip-channels", "8"]


@pytest.fixture(scope="module")
def piano_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("piano")
    (root / "src").mkdir()
    (root / "src" / "clip.wav").write_bytes((ROOT / "assets" / "fats_waller_aint_misbehavin_45s.wav").read_bytes())
    prepare(root / "src", root / "data", 16000, 1.0, 0.2, progress=False)
    return root / "data"


def train_cli(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "wavenet", "train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_training_lowers_the_loss_and_logs_curves_audio_and_checkpoints(piano_data, tmp_path):
    config = WaveNetConfig.preset("small", residual_channels=8, dilation_channels=8, skip_channels=16)
    settings = TrainSettings(batch_size=4, output_length=400, lr=1e-2, warmup_steps=5, max_steps=120,
                             val_every=60, checkpoint_every=60, sample_seconds=0.05)
    summary = Trainer(config, piano_data, tmp_path / "run", settings, progress=False).train()
    events = EventAccumulator(str(tmp_path / "run" / "tb")).Reload()
    losses = [e.value for e in events.Scalars("loss/train")]
    assert losses[-1] < losses[0] - 0.7  # from ~5.5 nats (uniform) towards the data's entropy
    assert {"loss/val", "bits/val", "lr", "samples_per_s", "audio_hours_seen"} <= set(events.Tags()["scalars"])
    assert events.Tags()["audio"] == ["sample"] and events.Tags()["images"] == ["sample_cqt"]
    assert sorted(p.name for p in (tmp_path / "run" / "samples").iterdir()) == [
        "step00000060.png", "step00000060.wav", "step00000120.png", "step00000120.wav"]
    model, info = load_checkpoint(tmp_path / "run" / "best")
    assert info["training"]["steps"] in (60, 120) and math.isfinite(info["training"]["val_loss"])
    assert summary["steps"] == 120 and summary["audio_hours_seen"] == pytest.approx(120 * 4 * 400 / 16000 / 3600, abs=1e-4)


def test_by_default_each_window_predicts_as_much_as_its_context_and_fits_the_recordings(tmp_path, capsys):
    def dataset(name: str, seconds: dict[str, float]) -> Path:
        writer = DatasetWriter(tmp_path / name, 16000, 1.0, 0.0, seed=0)
        for score, length in seconds.items():
            writer.add(score, np.sin(np.arange(int(length * 16000)) * 0.05).astype(np.float32), group=score)
        writer.finish()
        return tmp_path / name

    # four 6 s recordings (shorter than two of a large model's receptive fields) and four of 2 s
    mixed = dataset("mixed", {**{score: 6 for score in "abcd"}, **{score: 2 for score in "efgh"}})
    quick = TrainSettings(max_steps=1, val_every=1, checkpoint_every=1, sample_seconds=0)

    def trainer(preset: str, data: Path, settings: TrainSettings = quick) -> Trainer:
        config = WaveNetConfig.preset(preset, residual_channels=4, dilation_channels=4, skip_channels=8)
        return Trainer(config, data, tmp_path / "runs" / f"{preset}-{data.name}-{settings.output_length}",
                       settings, progress=False)

    small = trainer("small", mixed)
    assert (small.settings.batch_size, small.settings.output_length) == (7, 5115)  # 7 windows of 2 × 5,115
    assert "warning" not in capsys.readouterr().out
    longer = trainer("small", mixed, TrainSettings(output_length=16000, max_steps=1))
    assert (longer.settings.batch_size, longer.settings.output_length) == (3, 16000)  # still ~80,000 positions
    large = trainer("large", mixed)
    assert (large.settings.batch_size, large.settings.output_length) == (1, 6 * 16000 - 65532 - 1)
    assert "fit in recordings holding only 75% of" in capsys.readouterr().out  # the 2 s ones are never reached
    assert large.train()["steps"] == 1
    assert json.loads((large.run / "run.json").read_text())["settings"]["output_length"] == 30467
    with pytest.raises(DataError, match="too short for this model's receptive field"):
        trainer("large", dataset("short", {score: 2 for score in "abcd"}))


def test_accumulated_micro_batches_give_the_gradient_of_one_batch_holding_all_their_crops(piano_data, tmp_path):
    config = WaveNetConfig.preset("small", residual_channels=8, dilation_channels=8, skip_channels=16)
    settings = TrainSettings(batch_size=2, accumulate=3, output_length=400, max_steps=2, val_every=2,
                             checkpoint_every=2, sample_seconds=0.0)
    trainer = Trainer(config, piano_data, tmp_path / "run", settings, progress=False)
    draws = trainer.generator.get_state()
    accumulated_loss = trainer._accumulate_gradients()
    accumulated = [p.grad.clone() for p in trainer.model.parameters()]

    trainer.generator.set_state(draws)
    crops = torch.cat([trainer._training_crops() for _ in range(3)])
    trainer.optimizer.zero_grad(set_to_none=True)
    loss = trainer._loss(crops, crops)
    loss.backward()
    assert accumulated_loss == pytest.approx(loss.item(), rel=1e-5)
    for mine, whole in zip(accumulated, (p.grad for p in trainer.model.parameters())):
        torch.testing.assert_close(mine, whole, rtol=1e-4, atol=1e-6)

    summary = trainer.train()
    assert summary["accumulate"] == 3 and summary["samples_seen"] == 2 * 3 * 2 * 400


def test_slow_steps_still_put_a_point_on_the_curves_at_least_every_log_interval(piano_data, tmp_path, monkeypatch):
    import wavenet.train

    monkeypatch.setattr(wavenet.train, "LOG_SECONDS", 0.0)  # every step is "slow"
    config = WaveNetConfig.preset("small", residual_channels=4, dilation_channels=4, skip_channels=8)
    settings = TrainSettings(batch_size=1, output_length=200, max_steps=5, val_every=5, checkpoint_every=5,
                             sample_seconds=0.0)
    Trainer(config, piano_data, tmp_path / "run", settings, progress=False).train()
    steps = [e.step for e in EventAccumulator(str(tmp_path / "run" / "tb")).Reload().Scalars("loss/train")]
    assert steps == [1, 2, 3, 4, 5]


def test_bfloat16_training_learns_and_keeps_float_weights(piano_data, tmp_path):
    config = WaveNetConfig.preset("small", residual_channels=8, dilation_channels=8, skip_channels=16)
    settings = TrainSettings(batch_size=4, output_length=400, lr=1e-2, warmup_steps=5, max_steps=120,
                             val_every=120, checkpoint_every=120, sample_seconds=0.0, precision="bf16")
    trainer = Trainer(config, piano_data, tmp_path / "run", settings, progress=False)
    logit_dtypes = set()
    trainer.model.register_forward_hook(lambda module, inputs, output: logit_dtypes.add(output.dtype))
    summary = trainer.train()
    losses = [e.value for e in EventAccumulator(str(tmp_path / "run" / "tb")).Reload().Scalars("loss/train")]
    assert losses[-1] < losses[0] - 0.7  # as the float32 run in the test above
    assert logit_dtypes == {torch.bfloat16, torch.float32}  # training steps in bf16, validation in float32
    assert summary["precision"] == "bf16"


def test_recording_augmentation_trains_on_changed_crops_and_is_recorded(piano_data, tmp_path):
    config = WaveNetConfig.preset("small", residual_channels=8, dilation_channels=8, skip_channels=16)
    settings = TrainSettings(batch_size=4, output_length=400, lr=1e-2, warmup_steps=5, max_steps=120,
                             val_every=120, checkpoint_every=120, sample_seconds=0.0, augment="recording")
    trainer = Trainer(config, piano_data, tmp_path / "run", settings, progress=False)
    state = trainer.generator.get_state()
    augmented = trainer._training_crops()
    trainer.generator.set_state(state)
    plain = trainer.train_set.random_crops(4, trainer.crop_length, trainer.generator)
    assert augmented.shape == plain.shape and augmented.dtype == torch.uint8
    assert not torch.equal(augmented, plain)  # the same windows, some through a recording chain
    summary = trainer.train()
    losses = [e.value for e in EventAccumulator(str(tmp_path / "run" / "tb")).Reload().Scalars("loss/train")]
    assert all(math.isfinite(loss) for loss in losses) and min(losses[-3:]) < losses[0] - 0.4  # it learns
    assert summary["augment"] == "recording" and summary["augment_share"] == 0.5
    assert json.loads((tmp_path / "run" / "run.json").read_text())["settings"]["augment"] == "recording"


@pytest.mark.parametrize("share", [0.0, 1.5])
def test_an_augmentation_share_outside_0_to_1_is_refused(piano_data, tmp_path, share):
    config = WaveNetConfig.preset("small", residual_channels=4, dilation_channels=4, skip_channels=8)
    with pytest.raises(TrainingError, match="share"):
        Trainer(config, piano_data, tmp_path / "run", TrainSettings(augment="recording", augment_share=share),
                progress=False)


def test_a_small_augmentation_share_sends_about_that_share_of_crops_through_a_chain(piano_data, tmp_path):
    config = WaveNetConfig.preset("small", residual_channels=4, dilation_channels=4, skip_channels=8)
    settings = TrainSettings(batch_size=64, output_length=200, augment="recording", augment_share=0.1)
    trainer = Trainer(config, piano_data, tmp_path / "run", settings, progress=False)
    state = trainer.generator.get_state()
    augmented = trainer._training_crops()
    trainer.generator.set_state(state)
    plain = trainer.train_set.random_crops(64, trainer.crop_length, trainer.generator)
    changed = sum(not torch.equal(a, p) for a, p in zip(augmented, plain))
    assert 1 <= changed <= 16  # about 6 of 64


def test_history_noise_shows_the_model_a_noisy_past_but_scores_it_on_the_clean_samples(piano_data, tmp_path):
    from wavenet.augment import noisy_history
    from wavenet.train import next_sample_loss

    config = WaveNetConfig.preset("small", residual_channels=8, dilation_channels=8, skip_channels=16)
    settings = TrainSettings(batch_size=4, output_length=400, lr=1e-2, warmup_steps=5, max_steps=120,
                             val_every=120, checkpoint_every=120, sample_seconds=0.0, history_noise=2.0)
    trainer = Trainer(config, piano_data, tmp_path / "run", settings, progress=False)
    summary = trainer.train()
    losses = [e.value for e in EventAccumulator(str(tmp_path / "run" / "tb")).Reload().Scalars("loss/train")]
    assert all(math.isfinite(loss) for loss in losses) and min(losses[-3:]) < losses[0] - 0.4  # it learns
    assert summary["history_noise"] == 2.0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["settings"]["history_noise"] == 2.0

    state = trainer.generator.get_state()
    crops = trainer._training_crops()
    with torch.no_grad():
        noisy = noisy_history(crops, 2.0, trainer.generator)
        expected = next_sample_loss(trainer.model, crops, config.receptive_field, noisy).item()
        clean = next_sample_loss(trainer.model, crops, config.receptive_field).item()
        seen_as_targets = next_sample_loss(trainer.model, noisy, config.receptive_field).item()
    trainer.generator.set_state(state)
    assert trainer._accumulate_gradients() == pytest.approx(expected, rel=1e-6)
    assert min(abs(expected - clean), abs(expected - seen_as_targets)) > 1e-3


def test_a_run_killed_with_sigkill_resumes_exactly(piano_data, tmp_path):
    args = [*TINY, "--data", str(piano_data), "--batch-size", "2", "--output-length", "200", "--max-steps", "12",
            "--checkpoint-every", "3", "--val-every", "3", "--sample-seconds", "0", "--warmup-steps", "2"]
    straight = train_cli(*args, "--run", str(tmp_path / "straight"))
    assert straight.wait(timeout=300) == 0, straight.stdout.read()

    killed = train_cli(*args, "--run", str(tmp_path / "killed"))
    config = tmp_path / "killed" / "last" / "config.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        if config.exists() and json.loads(config.read_text())["training"]["steps"] >= 6:
            break
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    steps_at_kill = json.loads(config.read_text())["training"]["steps"]
    assert steps_at_kill < 12
    resumed = train_cli(*args, "--run", str(tmp_path / "killed"), "--resume")
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert f"resumed {tmp_path / 'killed'} at step {steps_at_kill}" in output
    a, _ = load_checkpoint(tmp_path / "straight" / "last")
    b, _ = load_checkpoint(tmp_path / "killed" / "last")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_a_resumed_stage_keeps_its_step_size_and_what_its_weights_had_heard_before(piano_data, tmp_path):
    common = [*TINY, "--data", str(piano_data), "--batch-size", "1", "--output-length", "200", "--val-every", "2",
              "--checkpoint-every", "2", "--sample-seconds", "0", "--warmup-steps", "1"]
    first = train_cli(*common, "--run", str(tmp_path / "first"), "--max-steps", "2")
    assert first.wait(timeout=300) == 0, first.stdout.read()
    stage = [*common, "--run", str(tmp_path / "stage")]
    begun = train_cli(*stage, "--max-steps", "2", "--accumulate", "3", "--init-from", str(tmp_path / "first" / "last"))
    assert begun.wait(timeout=300) == 0, begun.stdout.read()
    resumed = train_cli(*stage, "--max-steps", "4", "--resume")  # neither --accumulate nor --init-from again
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    training = json.loads((tmp_path / "stage" / "last" / "config.json").read_text())["training"]
    assert training["accumulate"] == 3 and training["samples_seen"] == 4 * 3 * 200
    assert training["init_from"] == str(tmp_path / "first" / "last")
    assert training["init_samples_seen"] == 2 * 200

    later = train_cli(*common, "--run", str(tmp_path / "later"), "--max-steps", "1",
                      "--init-from", str(tmp_path / "stage" / "last"))
    assert later.wait(timeout=300) == 0, later.stdout.read()
    training = json.loads((tmp_path / "later" / "last" / "config.json").read_text())["training"]
    assert training["init_samples_seen"] == (2 + 12) * 200  # both stages before it


def test_sigterm_stops_a_run_after_its_step_with_a_checkpoint_and_resume_continues(piano_data, tmp_path):
    args = [*TINY, "--data", str(piano_data), "--batch-size", "2", "--output-length", "200", "--checkpoint-every", "1000",
            "--val-every", "1000", "--sample-seconds", "0", "--run", str(tmp_path / "run")]
    run = train_cli(*args, "--max-steps", "100000")
    seen = ""
    while "first step took" not in seen and run.poll() is None:
        seen += run.stdout.readline()
    assert "first step took" in seen, seen
    second = train_cli(*args, "--max-steps", "10", "--resume")  # the folder is busy: refused, nothing written
    output = second.communicate(timeout=120)[0]
    assert second.returncode != 0 and f"in use by training process {run.pid}" in output, output
    run.send_signal(signal.SIGTERM)
    output = run.communicate(timeout=120)[0]
    assert run.returncode == 0, output
    summary = json.loads(output[output.index("{"):])
    assert summary["stopped_early"] and 1 <= summary["steps"] < 100000
    info = json.loads((tmp_path / "run" / "last" / "config.json").read_text())
    assert info["training"]["steps"] == summary["steps"]  # nothing trained after the checkpoint is lost
    resumed = train_cli(*args, "--max-steps", str(summary["steps"] + 2), "--resume")
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert json.loads(output[output.index("{"):])["steps"] == summary["steps"] + 2


def test_two_cpu_processes_under_torchrun_accumulating_gradients_keep_identical_replicas(piano_data, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
               "-m", "wavenet", "train", *TINY, "--data", str(piano_data), "--run-dir", str(tmp_path / "ddp"),
               "--batch-size", "2", "--output-length", "200", "--max-steps", "4", "--sample-seconds", "0",
               "--accumulate", "2"]  # replicas exchange gradients only on each step's last micro-batch
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["replica_difference"] == 0.0
    assert summary["samples_seen"] == 4 * 2 * 2 * 2 * 200  # both replicas' accumulated batches count


def test_a_stage_can_continue_the_adam_moments_of_the_run_its_weights_came_from(piano_data, tmp_path):
    config = WaveNetConfig.preset("small", residual_channels=4, dilation_channels=4, skip_channels=8)
    quick = dict(batch_size=1, output_length=200, max_steps=2, val_every=2, checkpoint_every=2, sample_seconds=0)
    Trainer(config, piano_data, tmp_path / "first", TrainSettings(**quick), progress=False).train()
    weights = tmp_path / "first" / "last"
    saved = torch.load(weights / "trainer.pt", weights_only=True)["optimizer"]["state"]

    def stage(name: str, keep: bool) -> Trainer:
        return Trainer(config, piano_data, tmp_path / name, progress=False,
                       settings=TrainSettings(**quick, init_from=str(weights), keep_optimizer=keep))

    continued = stage("continued", keep=True)
    moments = continued.optimizer.state_dict()["state"]
    assert moments.keys() == saved.keys()
    assert all(torch.equal(moments[i][k], saved[i][k]) for i in saved for k in ("exp_avg", "exp_avg_sq"))
    assert continued.step == 0  # only the moments: its own steps, clock and schedule start anew
    assert not stage("fresh", keep=False).optimizer.state
    continued.train()
    assert json.loads((tmp_path / "continued" / "run.json").read_text())["settings"]["keep_optimizer"]

    shipped = tmp_path / "shipped"  # shipped weights come without their optimizer
    shipped.mkdir()
    for name in ("config.json", "model.safetensors"):
        (shipped / name).write_bytes((weights / name).read_bytes())
    with pytest.raises(TrainingError, match="drop --keep-optimizer"):
        Trainer(config, piano_data, tmp_path / "nothing", progress=False,
                settings=TrainSettings(**quick, init_from=str(shipped), keep_optimizer=True))
    (shipped / "trainer.pt").write_bytes(b"not a torch file")
    with pytest.raises(TrainingError, match="does not hold an optimizer"):
        Trainer(config, piano_data, tmp_path / "damaged", progress=False,
                settings=TrainSettings(**quick, init_from=str(shipped), keep_optimizer=True))


@pytest.fixture(scope="module")
def kept_run(piano_data, tmp_path_factory) -> Path:
    """A tiny run that kept its checkpoints at steps 2 and 4, then was resumed to step 6."""
    run = tmp_path_factory.mktemp("kept") / "run"
    common = [*TINY, "--data", str(piano_data), "--run", str(run), "--checkpoint-every", "2", "--sample-seconds", "0"]
    window = ["--batch-size", "1", "--output-length", "200"]
    assert train_cli(*common, *window, "--max-steps", "4", "--keep-checkpoints").wait(timeout=300) == 0
    assert train_cli(*common, "--max-steps", "6", "--resume").wait(timeout=300) == 0  # keeps its own settings
    return run


def test_a_run_can_keep_every_checkpoint_to_choose_among_them_later(kept_run):
    kept = sorted(p.name for p in (kept_run / "steps").iterdir())
    assert kept == ["step00000002", "step00000004", "step00000006"]
    weights = [load_checkpoint(kept_run / "steps" / name) for name in kept]
    assert [info["training"]["steps"] for _, info in weights] == [2, 4, 6]
    assert not (kept_run / "steps" / kept[0] / "trainer.pt").exists()  # weights only: a long run keeps hundreds
    last, info = load_checkpoint(kept_run / "last")
    assert (info["training"]["batch_size"], info["training"]["output_length"]) == (1, 200)
    assert torch.equal(weights[-1][0].state_dict()["end2.bias"], last.state_dict()["end2.bias"])
    assert not torch.equal(weights[0][0].state_dict()["end2.bias"], last.state_dict()["end2.bias"])


def select_checkpoint(run: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "tools/select_checkpoint.py", str(run), "--seeds", "1-2",
                           "--seconds", "0.5", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_kept_checkpoint_with_the_most_attacks_under_a_flatness_limit_is_chosen(kept_run):
    (kept_run / "steps" / "step00000004" / "model.safetensors").write_bytes(b"cut short")
    chosen = select_checkpoint(kept_run, "--max-flatness", "1")
    assert chosen.returncode == 0, chosen.stderr
    rows = {line.split()[0]: line.split()[1:] for line in chosen.stdout.splitlines()[1:-1]}
    assert rows.keys() == {"step00000002", "step00000004", "step00000006"}
    assert rows["step00000004"][0] == "skipped:"  # a damaged checkpoint is named, not fatal
    scores = {name: json.loads((kept_run / "steps" / name / "takes.json").read_text())["seeds 1-2, 0.5 s"]
              for name in ("step00000002", "step00000006")}
    best = max(scores, key=lambda name: (scores[name]["attacks_per_s"], -scores[name]["flatness"]))
    assert chosen.stdout.splitlines()[-1] == f"chosen: {kept_run / 'steps' / best}"
    assert [float(v) for v in rows[best][:2]] == pytest.approx(
        [scores[best]["attacks_per_s"], scores[best]["flatness"]], abs=1e-3)

    strict = select_checkpoint(kept_run, "--max-flatness", "0")  # measured once: read back, not sampled again
    assert strict.stdout.splitlines()[-1] == "chosen: none (no checkpoint's median flatness is at or under 0)"
    assert select_checkpoint(kept_run.parent / "elsewhere", "--max-flatness", "1").stderr.startswith(
        "error: ")


def test_impossible_options_and_missing_data_are_one_line_errors(tmp_path, piano_data):
    for extra, message in [(["--data", str(tmp_path / "none")], "not a prepared dataset"),
                           (["--data", str(piano_data), "--output-length", "9000000", "--max-steps", "1"], "do not fit"),
                           (["--data", str(piano_data)], "--max-steps, --epochs or --time-budget")]:
        process = train_cli(*TINY, "--run", str(tmp_path / "r"), *extra)
        output = process.communicate(timeout=120)[0]
        assert process.returncode == 2
        assert output.strip().splitlines()[-1].startswith("error: ") and message in output
        assert "Traceback" not in output


@pytest.mark.parametrize("shipped_from", ["run folder", "GPU lease's $OUT"])
def test_a_continued_run_ships_into_its_checkpoint_with_one_cumulative_history(piano_data, tmp_path, shipped_from):
    import shutil

    from studio.runs import RunFolder
    sys.path.insert(0, str(ROOT))
    from tools.gpu_train import export

    config = WaveNetConfig.preset("small", residual_channels=4, dilation_channels=4, skip_channels=8)
    quick = dict(batch_size=2, output_length=200, max_steps=4, val_every=2, checkpoint_every=2, sample_seconds=0)
    Trainer(config, piano_data, tmp_path / "first", TrainSettings(**quick), progress=False).train()
    shipped = tmp_path / "shipped"
    shutil.copytree(tmp_path / "first" / "last", shipped, ignore=shutil.ignore_patterns("trainer.pt"))
    shutil.copytree(tmp_path / "first" / "tb", shipped / "tb")
    more = TrainSettings(**{**quick, "max_steps": 3, "init_from": str(shipped)})
    Trainer(config, piano_data, tmp_path / "more", more, progress=False).train()
    continued = json.loads((tmp_path / "more" / "last" / "config.json").read_text())["training"]
    # The run's card knows what its weights had heard before it.
    assert continued["init_from"] == str(shipped) and continued["init_samples_seen"] == 4 * 2 * 200
    source = tmp_path / "more"
    if shipped_from == "GPU lease's $OUT":
        export(source, tmp_path / "out")  # flat, as the device returns it
        source = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "ship_run.py"), str(source), str(shipped),
                             "--history", "3 more steps"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    training = json.loads((shipped / "config.json").read_text())["training"]
    assert training["steps"] == 7 and training["samples_seen"] == 7 * 2 * 200
    assert training["history"].endswith("3 more steps")
    assert not [key for key in training if key.startswith("init_")]  # shipped totals include the earlier training
    a, _ = load_checkpoint(shipped)
    b, _ = load_checkpoint(tmp_path / "more" / "last")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert (shipped / "trainer.pt").exists()  # the run's Adam moments, for a next stage with --keep-optimizer
    curve = RunFolder("shipped", shipped).scalars().query("tag == 'loss/train'")
    assert sorted(curve["step"]) == [1, 4 + 1]  # logged at each run's step 1: the continuation follows the first


def test_the_gradient_precision_check_rounds_like_torch_and_finds_float32_exact(piano_data, tmp_path):
    sys.path.insert(0, str(ROOT))
    from tools.gradient_precision import rounded

    model = WaveNet(WaveNetConfig.preset("small", residual_channels=4, dilation_channels=4, skip_channels=8))
    as_bf16 = rounded(model, 16)
    assert all(torch.equal(a, b.to(torch.bfloat16).float()) for a, b in zip(as_bf16.parameters(), model.parameters()))
    Trainer(model.config, piano_data, tmp_path / "run", TrainSettings(batch_size=2, output_length=200, max_steps=1,
                                                                      sample_seconds=0), progress=False).train()
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "gradient_precision.py"), str(tmp_path / "run" / "last"),
                             "--data", str(piano_data), "--batches", "2", "--output-length", "200"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-1].split()
    assert last[0] == "2" and last[1:4] == ["cos", "1.000,", "norm"]  # float32 agrees with float64


def test_a_second_look_at_a_run_is_scored_on_clips_the_first_look_did_not_use(piano_data):
    sys.path.insert(0, str(ROOT))
    from tools.make_card import validation_rows

    first, _ = validation_rows(piano_data, 3)
    second, _ = validation_rows(piano_data, 3, second_set=True)
    assert len(first) == len(second) == 3
    assert not any(torch.equal(a, b) for a in first for b in second)
