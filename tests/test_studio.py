"""The studio's pages driven by Streamlit's AppTest, on the shipped default checkpoint."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import tone
from wavenet.audio import audio_bytes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def in_project_root(monkeypatch):
    monkeypatch.chdir(ROOT)


@pytest.fixture
def runs_cleaned_up(tmp_path):
    """A test that fails half-way must not leave its background training running."""
    yield tmp_path
    from studio.training_jobs import running_pid

    for run in (tmp_path / "runs").glob("*"):
        if (pid := running_pid(run)) is not None:
            os.kill(pid, signal.SIGKILL)


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{name}.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def wait_for_take(at: AppTest, count: int, seconds: float = 120) -> list:
    deadline = time.time() + seconds
    while time.time() < deadline:
        at.run()
        assert not at.exception, at.exception
        takes = at.session_state["takes"] if "takes" in at.session_state else []
        if len(takes) >= count:
            return takes
        time.sleep(0.2)
    raise AssertionError("the take did not finish")


def test_generate_page_has_its_controls_and_makes_takes_of_the_requested_length_and_seed():
    at = page("generate")
    labels = {s.label for s in at.slider} | {n.label for n in at.number_input} | {b.label for b in at.button}
    assert {"Length (seconds)", "Temperature (0 = greedy)", "Min-p (0 = off)", "Seed", "Variations", "New seed",
            "▶ Generate"} <= labels
    assert any("receptive field" in c.value for c in at.sidebar.caption)
    assert any(c.value.startswith("**sounds like**: ") for c in at.sidebar.caption)  # what to expect, from its card
    at.slider(key="generate_seconds").set_value(0.5)
    at.button(key="generate_go").click().run()
    first = wait_for_take(at, 1)[0]
    assert first.audio.shape == (1, 8000)
    assert any(d.label == "⬇ WAV" for d in at.download_button)
    at.button(key="generate_go").click().run()
    second = wait_for_take(at, 2)[0]
    assert second.settings["seed"] != first.settings["seed"]  # pressing Generate again gives a new take
    assert not np.array_equal(second.audio, first.audio)
    assert at.number_input(key="generate_seed").value == second.settings["seed"]  # the box shows the take's seed
    assert any("your last take here" in c.value for c in at.sidebar.caption)  # its speed on this machine, now
    at.checkbox(key="generate_fresh_seed").uncheck().run()
    at.number_input(key="generate_seed").set_value(11).run()
    at.slider(key="generate_min_p").set_value(0.1).run()
    at.button(key="generate_go").click().run()
    eleven = wait_for_take(at, 3)[0]
    at.button(key="generate_go").click().run()
    again = wait_for_take(at, 4)[0]
    assert eleven.settings["seed"] == again.settings["seed"] == 11
    assert np.array_equal(again.audio, eleven.audio)  # same seed, same take
    assert eleven.settings["min_p"] == 0.1
    assert any("seed 11 · temperature 1 · min-p 0.1" in e.label for e in at.expander)  # the take list says so
    assert eleven.filename(0, "wav").endswith("_seed11_temp1_minp0.1.wav")
    at.checkbox(key="generate_fresh_seed").check().run()
    at.button(key="generate_new_seed").click().run()
    assert at.number_input(key="generate_seed").value != 11
    assert not at.checkbox(key="generate_fresh_seed").value  # ... and so is a rolled one
    at.checkbox(key="generate_fresh_seed").check().run()
    at.button(key=f"again_{first.key}").click().run()  # "same settings again", its seed too
    assert not at.exception and at.number_input(key="generate_seed").value == first.settings["seed"]
    assert not at.checkbox(key="generate_fresh_seed").value
    assert at.slider(key="generate_min_p").value == 0.0  # the first take was sampled without min-p
    assert any("Back in the controls" in t.value for t in at.toast) and not at.warning
    at.button(key=f"delete_{first.key}").click().run()
    assert not at.exception and first not in at.session_state["takes"] and len(at.session_state["takes"]) == 3


def test_continue_page_continues_the_example_and_marks_the_seam():
    at = page("continue")
    assert at.slider(key="continue_region").value == (0.4, 3.4)  # past the recording's silent lead-in (0.48 s)
    at.slider(key="continue_region").set_value((0.0, 1.0)).run()
    [overview] = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]  # the clip, its prime shaded
    [shaded] = overview["layout"]["shapes"]
    assert (shaded["x0"], shaded["x1"]) == (0.0, 1.0)
    at.slider(key="continue_seconds").set_value(0.5)
    at.button(key="continue_go").click().run()
    take = wait_for_take(at, 1)[0]
    assert take.audio.shape == (1, 16000 + 8000) and take.seam_seconds == pytest.approx(1.0)
    assert "continuing fats_waller_aint_misbehavin_45s.wav (0.0–1.0 s)" in take.length_label()
    at.slider(key="continue_region").set_value((2.0, 5.0)).run()
    at.button(key=f"again_{take.key}").click().run()  # "same settings again" puts its prime back too
    assert not at.exception and at.slider(key="continue_region").value == (0.0, 1.0)
    assert any("and its prime, 0.0–1.0 s" in t.value for t in at.toast)


def test_a_take_whose_browser_session_has_gone_stops_and_keeps_what_it_sampled(monkeypatch):
    from studio import live
    from wavenet.checkpoint import load_checkpoint
    from wavenet.sampler import GenerationSettings

    monkeypatch.setattr(live, "ORPHAN_GRACE_SECONDS", 0.3)
    model, _ = load_checkpoint("piano-small")
    take = live.start_take(model, "piano-small", GenerationSettings(seconds=60.0, seed=1))
    take.connected = lambda: False  # as if the tab had been closed just after Generate
    deadline = time.time() + 60
    while not take.finished and time.time() < deadline:
        time.sleep(0.1)
    assert take.finished and take.orphaned and take.stopped_early
    assert 0 < take.audio().shape[1] < 60 * 16000


def reopened(name: str, visitor: str) -> AppTest:
    """The page opened again at the address a reload keeps (`?studio=<visitor>`): a new browser session."""
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{name}.py"), default_timeout=120)
    at.query_params["studio"] = visitor
    at.run()
    assert not at.exception, at.exception
    return at


def two_short_continuations(at: AppTest) -> tuple:
    """The example clip's first second continued twice by half a second: (first take, second take)."""
    at.slider(key="continue_region").set_value((0.0, 1.0)).run()
    at.slider(key="continue_seconds").set_value(0.5)
    at.button(key="continue_go").click().run()
    first = wait_for_take(at, 1)[0]
    at.button(key="continue_go").click().run()
    return first, wait_for_take(at, 2)[0]


def test_takes_survive_a_reload_and_a_deleted_one_stays_deleted():
    at = page("continue")
    visitor = at.session_state["visitor"]
    assert at.query_params["studio"] == visitor  # in the address, which a reload keeps
    first, second = two_short_continuations(at)
    again = reopened("continue", visitor)
    kept = again.session_state["takes"]
    assert [take.key for take in kept] == [second.key, first.key]  # newest first, as before
    assert np.array_equal(kept[1].audio, first.audio) and kept[1].region == (0.0, 1.0)
    assert kept[1].filename(0, "wav") == first.filename(0, "wav")
    assert len([e for e in again.expander if "continuing fats_waller" in e.label]) == 2
    again.button(key=f"delete_{first.key}").click().run()
    assert [take.key for take in reopened("continue", visitor).session_state["takes"]] == [second.key]
    assert "takes" not in page("continue").session_state or not page("continue").session_state["takes"]


def test_a_deleted_take_comes_back_with_undo_until_the_next_take():
    at = page("continue")
    first, second = two_short_continuations(at)
    at.button(key=f"delete_{first.key}").click().run()
    assert [take.key for take in at.session_state["takes"]] == [second.key]
    assert any(c.value.startswith("Deleted: piano-small") for c in at.caption)
    at.button(key="continue_undo_delete").click().run()
    assert not at.exception and [take.key for take in at.session_state["takes"]] == [second.key, first.key]
    assert [t.key for t in reopened("continue", at.session_state["visitor"]).session_state["takes"]] == \
        [second.key, first.key]  # back on disk too
    at.button(key=f"delete_{second.key}").click().run()
    at.button(key="continue_go").click().run()
    wait_for_take(at, 2)
    assert not any(b.key == "continue_undo_delete" for b in at.button)  # the new take ended the offer


def test_an_uploaded_clip_survives_a_reload_with_the_continuations_made_from_it():
    at = page("continue")
    at.radio(key="continue_clip_source").set_value("Upload a piano clip").run()
    at.file_uploader(key="continue_upload").upload("my take.wav", audio_bytes(tone(2.0), 16000), "audio/wav").run()
    at.slider(key="continue_region").set_value((0.5, 1.5)).run()
    at.slider(key="continue_seconds").set_value(0.5)
    at.button(key="continue_go").click().run()
    take = wait_for_take(at, 1)[0]
    again = reopened("continue", at.session_state["visitor"])
    again.button(key=f"again_{take.key}").click().run()  # "same settings again" finds the clip
    assert not again.exception and not any("no longer uploaded" in t.value for t in again.toast)
    assert again.radio(key="continue_clip_source").value == "Upload a piano clip"
    assert any("Using my take.wav, uploaded earlier" in c.value for c in again.caption)
    assert again.slider(key="continue_region").value == (0.5, 1.5)


def test_a_damaged_saved_take_or_a_made_up_address_is_passed_over():
    from studio.visitor import VisitorStore, store_root

    at = page("generate")
    at.slider(key="generate_seconds").set_value(0.5)
    at.button(key="generate_go").click().run()
    take = wait_for_take(at, 1)[0]
    visitor = at.session_state["visitor"]
    folder = VisitorStore(store_root(), visitor).folder
    (folder / "broken.json").write_text('{"page": "generate"')
    (folder / "nothing.json").write_text("{}")
    (folder / "nothing.npz").write_bytes(b"not numpy")
    again = reopened("generate", visitor)
    assert [kept.key for kept in again.session_state["takes"]] == [take.key]
    stranger = reopened("generate", "../" + visitor)
    assert stranger.session_state["visitor"] != visitor and not stranger.session_state["takes"]


def test_a_reload_while_sampling_picks_the_take_up_in_the_new_session():
    at = page("generate")
    at.slider(key="generate_seconds").set_value(6.0)
    at.button(key="generate_go").click().run()
    live_id = at.session_state["generate_live"]
    again = reopened("generate", at.session_state["visitor"])
    assert again.session_state["generate_live"] == live_id  # its progress and player, here
    take = wait_for_take(again, 1)[0]
    assert take.audio.shape == (1, 6 * 16000) and not take.stopped_early
    at.run()  # the old session (another tab) sees it finish too, and lists the same take
    assert not at.exception and [kept.key for kept in at.session_state["takes"]] == [take.key]
    assert len(reopened("generate", at.session_state["visitor"]).session_state["takes"]) == 1  # saved once


def test_a_reload_that_lands_on_another_page_still_picks_the_take_up():
    at = page("continue")
    at.slider(key="continue_seconds").set_value(6.0)
    at.button(key="continue_go").click().run()
    live_id = at.session_state["continue_live"]
    again = AppTest.from_file(str(ROOT / "navigation.py"), default_timeout=120)
    again.query_params["studio"] = at.session_state["visitor"]
    again.run()  # the reload opens Generate
    assert not again.exception and again.session_state["continue_live"] == live_id
    links = [link.proto for link in again.sidebar.get("page_link")]  # where it samples on, one click away
    assert [(link.label, link.page) for link in links] == [("Still sampling: Continue a clip", "continue")]
    again.switch_page("app_pages/continue.py").run()
    assert not again.sidebar.get("page_link")  # on its own page, its panel says it
    take = wait_for_take(again, 1)[0]
    assert not take.stopped_early and take.source == "fats_waller_aint_misbehavin_45s.wav"
    again.switch_page("app_pages/generate.py").run()
    assert not again.sidebar.get("page_link")  # done: nothing samples elsewhere


def test_a_take_picked_up_by_a_second_tab_samples_on_when_that_tab_closes(monkeypatch):
    from studio import live
    from wavenet.checkpoint import load_checkpoint
    from wavenet.sampler import GenerationSettings

    monkeypatch.setattr(live, "ORPHAN_GRACE_SECONDS", 0.3)
    open_tabs = {"first", "second"}
    model, _ = load_checkpoint("piano-small")
    monkeypatch.setattr(live, "session_connected", lambda: lambda: "first" in open_tabs)
    kept_on = live.start_take(model, "piano-small", GenerationSettings(seconds=3.0, seed=1))
    monkeypatch.setattr(live, "session_connected", lambda: lambda: "second" in open_tabs)
    kept_on.connected = live.also_connected(kept_on.connected)  # the second tab picks it up ...
    open_tabs.discard("second")  # ... and is closed
    deadline = time.time() + 60
    while not kept_on.finished and time.time() < deadline:
        time.sleep(0.1)
    assert kept_on.finished and not kept_on.orphaned and kept_on.audio().shape[1] == 3 * 16000
    open_tabs.discard("first")  # with both gone, a take stops
    monkeypatch.setattr(live, "session_connected", lambda: lambda: "first" in open_tabs)
    orphan = live.start_take(model, "piano-small", GenerationSettings(seconds=60.0, seed=1))
    orphan.connected = live.also_connected(orphan.connected)
    while not orphan.finished and time.time() < deadline:
        time.sleep(0.1)
    assert orphan.orphaned and orphan.stopped_early


def test_settings_the_checkpoint_and_an_upload_survive_a_visit_to_another_page_and_a_reload():
    at = AppTest.from_file(str(ROOT / "navigation.py"), default_timeout=120).run()
    at.slider(key="generate_seconds").set_value(7.5)
    at.sidebar.selectbox(key="checkpoint").set_value("piano-medium").run()
    at.switch_page("app_pages/continue.py").run()
    at.radio(key="continue_clip_source").set_value("Upload a piano clip").run()
    at.file_uploader(key="continue_upload").upload("my take.wav", audio_bytes(tone(2.0), 16000), "audio/wav").run()
    assert at.slider(key="continue_region").value == (0.0, 2.0)  # its own first region, not the example's
    at.slider(key="continue_region").set_value((0.5, 1.5)).run()
    at.switch_page("app_pages/generate.py").run()
    assert not at.exception, at.exception
    assert at.slider(key="generate_seconds").value == 7.5
    assert at.sidebar.selectbox(key="checkpoint").value == "piano-medium"
    at.switch_page("app_pages/continue.py").run()
    assert not at.exception and not at.warning, at.warning
    assert any("my take.wav" in c.value for c in at.caption)
    assert at.slider(key="continue_region").value == (0.5, 1.5)
    assert not at.button(key="continue_go").disabled
    again = AppTest.from_file(str(ROOT / "navigation.py"), default_timeout=120)
    again.query_params["studio"] = at.session_state["visitor"]
    again.run()  # a reload opens the first page: the controls are as they were left
    assert not again.exception, again.exception
    assert again.slider(key="generate_seconds").value == 7.5
    assert again.sidebar.selectbox(key="checkpoint").value == "piano-medium"
    again.switch_page("app_pages/continue.py").run()
    assert any("my take.wav" in c.value for c in again.caption)
    assert again.slider(key="continue_region").value == (0.5, 1.5)


@pytest.mark.parametrize("name, content, message", [
    ("broken.wav", b"RIFF....WAVEnot really", "looks like a WAV file but cannot be decoded"),
    ("notes.mp3", b"plain text, renamed", "not a readable audio file"),
    ("silence.wav", audio_bytes(np.zeros(16000, np.float32), 16000), "silent"),
    ("empty.flac", b"", "is empty (0 bytes)"),
    ("huge.wav", bytes(21 * 1024 * 1024), "the limit is 20 MB"),
])
def test_bad_uploads_get_a_clear_message_and_the_page_keeps_working(name, content, message):
    at = page("continue")
    at.radio(key="continue_clip_source").set_value("Upload a piano clip").run()
    at.file_uploader(key="continue_upload").upload(name, content, "audio/wav").run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]
    assert at.button(key="continue_go").disabled
    at.file_uploader(key="continue_upload").upload("good.wav", audio_bytes(tone(2.0), 16000), "audio/wav").run()
    assert not at.error and not at.button(key="continue_go").disabled


def test_a_surround_upload_is_accepted_and_said_to_be_mixed_to_mono():
    at = page("continue")
    at.radio(key="continue_clip_source").set_value("Upload a piano clip").run()
    six_channels = np.stack([tone(2.0, 44100, freq=220.0 * (1 + i)) for i in range(6)], axis=1)
    at.file_uploader(key="continue_upload").upload("surround.wav", audio_bytes(six_channels, 44100), "audio/wav").run()
    assert not at.exception and not at.error
    assert any("surround.wav has 6 channels, mixed to one" in c.value for c in at.caption), [c.value for c in at.caption]
    assert not at.button(key="continue_go").disabled


def test_a_damaged_checkpoint_says_why_and_another_can_be_picked(tmp_path, monkeypatch):
    broken = tmp_path / "runs" / "broken" / "best"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text((ROOT / "checkpoints" / "piano-small" / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(os.urandom(1000))
    monkeypatch.chdir(tmp_path)
    at = page("generate")
    assert any(o.startswith("broken (run's best) · ") for o in at.sidebar.selectbox(key="checkpoint").options)
    at.sidebar.selectbox(key="checkpoint").set_value("runs/broken/best").run()
    assert not at.exception
    assert any("truncated or corrupt" in e.value for e in at.sidebar.error)
    assert any("pick another checkpoint" in w.value for w in at.warning)
    at.sidebar.selectbox(key="checkpoint").set_value("piano-small").run()
    assert not at.exception and not at.warning and at.button(key="generate_go")


def test_a_training_runs_checkpoint_says_its_bits_are_its_own_and_counts_the_audio_heard_before_it(tmp_path,
                                                                                                   monkeypatch):
    stage = tmp_path / "runs" / "stage" / "best"
    stage.mkdir(parents=True)
    (stage / "model.safetensors").write_bytes((ROOT / "checkpoints" / "piano-small" / "model.safetensors").read_bytes())
    card = json.loads((ROOT / "checkpoints" / "piano-small" / "config.json").read_text())
    shipped_bits = card.pop("evaluation")["val_bits_per_sample"]
    card["training"] = {"steps": 50, "audio_hours_seen": 0.18, "val_bits_per_sample": 2.327,
                        "init_from": "checkpoints/piano-small", "init_samples_seen": round(66.1 * 3600 * 16000)}
    (stage / "config.json").write_text(json.dumps(card))
    monkeypatch.chdir(tmp_path)
    at = page("generate")
    shipped = [c.value for c in at.sidebar.caption]
    assert f"**validation bits/sample**: {shipped_bits:.3f} (held-out renders, model card)" in shipped
    at.sidebar.selectbox(key="checkpoint").set_value("runs/stage/best").run()
    captions = [c.value for c in at.sidebar.caption]
    assert ("**validation bits/sample**: 2.327 (the run's own validation crops: not comparable with a model "
            "card's)") in captions
    assert "**audio seen in training**: 0.2 h in this run, after piano-small's 66.1 h" in captions
    from torch.utils.tensorboard import SummaryWriter

    (stage.parent / "last").mkdir()
    for name in ("config.json", "model.safetensors"):
        (stage.parent / "last" / name).write_bytes((stage / name).read_bytes())
    with SummaryWriter(str(stage.parent / "tb")) as log:
        log.add_scalar("audio_hours_seen", 0.18, 50)
    monitor = page("training")
    monitor.selectbox(key="training_run").set_value("stage").run()
    assert next(m for m in monitor.metric if m.label == "Audio seen").value == "0.18 h"
    assert any("weights it started from had heard 66.1 h before it (66.3 h in all)" in c.value
               for c in monitor.caption)  # the monitor's count is the run's, and says so


def test_training_page_shows_the_shipped_checkpoints_training_curves():
    at = page("training")
    assert not at.exception
    assert any(m.label == "Step" for m in at.metric)
    assert at.session_state["training_run"].endswith("(shipped)") or at.selectbox(key="training_run").value
    assert any(", residual " in c.value and " kHz · " in c.value for c in at.caption)  # how it was set up
    at.radio(key="training_x").set_value("hours of audio seen").run()
    assert not at.exception and len(at.get("plotly_chart")) == 3
    at.selectbox(key="training_run").set_value("piano-small (shipped)").run()
    steps = json.loads((ROOT / "checkpoints" / "piano-small" / "config.json").read_text())["training"]["steps"]
    assert next(m for m in at.metric if m.label == "Step").value == f"{steps:,}"  # its curves end at its weights
    low, high = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["yaxis"]["range"]
    assert 0 < low < high < 4  # the first steps' 8 bits/sample would flatten 31,000 steps of 2-3 bits
    assert any("autoscale" in c.value and "the mean of each" in c.value for c in at.caption)  # a line, not a band
    assert {"unique", "continuation"} <= {c.value for c in at.caption}  # its card's example takes, to hear
    assert len(at.get("audio")) >= 2


def test_a_resumed_run_shows_what_it_logged_since_its_checkpoint_not_what_the_killed_process_did(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from studio.runs import RunFolder

    run = tmp_path / "mine"
    with SummaryWriter(str(run / "tb")) as killed:  # logged up to step 10, then killed; its checkpoint was step 5
        for step in range(1, 11):
            killed.add_scalar("loss/train", 3.0, step, walltime=1000.0 + step)
    with SummaryWriter(str(run / "tb"), purge_step=6) as resumed:  # as wavenet.train resumes
        for step in (6, 7):
            resumed.add_scalar("loss/train", 2.0, step, walltime=2000.0 + step)
    curve = RunFolder("mine", run).scalars()
    assert curve["step"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert curve["value"].tolist() == [3.0] * 5 + [2.0] * 2


def test_training_page_slides_through_the_samples_a_run_logged(tmp_path, monkeypatch):
    from torch.utils.tensorboard import SummaryWriter

    run = tmp_path / "runs" / "mine"
    (run / "samples").mkdir(parents=True)
    with SummaryWriter(str(run / "tb")) as writer:
        for step in (125, 250):
            writer.add_scalar("loss/train", 3.0, step)
    for step, pitch in ((125, 220.0), (250, 440.0)):
        (run / "samples" / f"step{step:08d}.wav").write_bytes(audio_bytes(tone(1.0, freq=pitch), 16000))
    monkeypatch.chdir(tmp_path)
    at = page("training")
    slider = at.select_slider(key="training_sample_mine")
    assert slider.options == ["step 125", "step 250"] and slider.value == "step 250"  # the newest first
    heard = at.get("audio")[0].proto.url
    slider.set_value("step 125").run()
    assert not at.exception and at.get("audio")[0].proto.url != heard


def test_a_run_brought_back_from_a_gpu_machine_is_described_by_its_last_checkpoint(tmp_path):
    """tools/gpu_train.py returns tb/ and last/ without a run.json: the monitor still says what it is."""
    from studio.runs import find_runs

    run = tmp_path / "runs" / "gpu7"
    (run / "tb").mkdir(parents=True)
    (run / "last").mkdir()
    (run / "last" / "config.json").write_text(json.dumps({
        "model": {"layers": 10, "stacks": 5, "residual_channels": 32, "skip_channels": 128, "sample_rate": 16000},
        "training": {"steps": 2843, "samples_seen": 7.28e8, "device": "NVIDIA H100 80GB HBM3"}}))
    [found] = find_runs(tmp_path / "runs", tmp_path / "checkpoints")
    assert found.description() == ("10×5, residual 32, skip 128, 16 kHz · 2,843 steps · 728 million samples · "
                                   "trained on NVIDIA H100 80GB HBM3")


def test_a_checkpoint_trained_in_stages_names_its_hardware_in_words():
    from studio.runs import hardware

    assert hardware("NVIDIA H200 + cpu + NVIDIA H100 80GB HBM3") == "NVIDIA H200, a CPU and NVIDIA H100 80GB HBM3"
    assert hardware("cpu") == "a CPU" and hardware("") == "unknown hardware"


def test_training_page_starts_a_run_in_the_background_and_stops_it_with_a_checkpoint(runs_cleaned_up, monkeypatch):
    from studio.training_jobs import running_pid
    from wavenet.data import DatasetWriter, prepare

    tmp_path = runs_cleaned_up
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "clip.wav").write_bytes((ROOT / "assets" / "fats_waller_aint_misbehavin_45s.wav").read_bytes())
    prepare(tmp_path / "src", tmp_path / "data" / "tiny", 16000, 1.0, 0.2, progress=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "broken").mkdir()
    (tmp_path / "data" / "broken" / "manifest.json").write_text("{not json")
    evaluation = DatasetWriter(tmp_path / "data" / "evaluation", 16000, 1.0, 0.5, seed=0)
    for score in ("a", "b", "c", "d"):
        evaluation.add(score, np.sin(np.arange(32000) * 0.05).astype(np.float32), group=score)
    assert evaluation.finish("held out", evaluation_only=True)["train_clips"] > 0
    at = page("training")
    assert "No training runs yet" in at.info[-1].value
    # Neither the unreadable dataset nor the one made for evaluation, though it has training clips.
    assert at.selectbox(key="new_run_data").options == ["tiny (0.6 min to train on)"]
    at.text_input(key="new_run_name").set_value("../escape")
    next(b for b in at.button if b.label == "▶ Start training").click().run()
    assert any("Name the run" in e.value for e in at.error) and not (tmp_path / "runs").exists()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "corpus.log").write_text("another job's output")
    at.text_input(key="new_run_name").set_value("corpus")
    next(b for b in at.button if b.label == "▶ Start training").click().run()
    assert any("exists already" in e.value for e in at.error) and not (tmp_path / "runs" / "corpus").exists()
    at.text_input(key="new_run_name").set_value("mine")
    at.select_slider(key="new_run_residual").set_value(4)
    at.select_slider(key="new_run_skip").set_value(8)
    at.selectbox(key="new_run_precision").set_value("bf16")
    assert at.selectbox(key="new_run_augment").options == ["none", "recording"]
    at.number_input(key="new_run_history_noise").set_value(1.5)
    next(b for b in at.button if b.label == "▶ Start training").click().run()
    assert not at.exception, at.exception
    run = tmp_path / "runs" / "mine"
    assert at.selectbox(key="training_run").value == "mine" and running_pid(run) is not None
    deadline = time.time() + 120
    while "first step took" not in (tmp_path / "runs" / "mine.log").read_text() and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    assert any(c.value.startswith("10×5, residual 4, skip 8") and "bf16" in c.value
               and "history noise ≤ 1.5 classes" in c.value for c in at.caption)
    at.button(key="training_stop").click().run()
    assert not at.exception, at.exception
    deadline = time.time() + 120
    while running_pid(run) is not None and time.time() < deadline:
        time.sleep(0.5)
    assert running_pid(run) is None
    assert (run / "last" / "model.safetensors").exists()  # stopped with a checkpoint, resumable
    assert json.loads((run / "run.json").read_text())["settings"]["precision"] == "bf16"
    assert json.loads((run / "run.json").read_text())["settings"]["augment"] == "none"
    at.run()
    assert any("not running now" in c.value for c in at.caption)
    assert any(":gray-badge[idle]" in m.value for m in at.markdown)
    stopped_at = json.loads((run / "last" / "config.json").read_text())["training"]["steps"]
    at.number_input(key="training_more").set_value(0.5)
    at.button(key="training_resume").click().run()  # continues from the checkpoint, then ends by its budget
    assert not at.exception, at.exception
    deadline = time.time() + 180
    while running_pid(run) is not None and time.time() < deadline:
        time.sleep(0.5)
    log = (tmp_path / "runs" / "mine.log").read_text()
    assert f"resumed {Path('runs') / 'mine'} at step {stopped_at}" in log, log[-2000:]
    training = json.loads((run / "last" / "config.json").read_text())["training"]
    assert training["steps"] > stopped_at and training["precision"] == "bf16"  # the resumed run kept bf16
    assert training["history_noise"] == 1.5  # and its history noise


def test_a_run_started_from_a_checkpoint_at_a_larger_size_grows_it_and_a_mismatch_is_explained(tmp_path):
    from studio.training_jobs import TrainingRequest, with_grown_weights
    from wavenet.checkpoint import load_checkpoint, save_checkpoint
    from wavenet.model import WaveNet, WaveNetConfig

    small = save_checkpoint(tmp_path / "mine", WaveNet(WaveNetConfig.preset(
        "small", residual_channels=4, dilation_channels=4, skip_channels=8)), {"steps": 7, "samples_seen": 1000})
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "manifest.json").write_text("{}")

    def request(preset: str, residual: int = 4, skip: int = 8) -> TrainingRequest:
        return TrainingRequest("run", tmp_path / "data", preset, residual, skip, 1.0, str(small), 1, "cpu")

    assert request("small").problems(tmp_path / "runs") == [] and not request("small").grows()
    [widths] = request("small", residual=32).problems(tmp_path / "runs")
    assert "mine has 4 residual and 8 skip channels" in widths
    run = tmp_path / "runs" / "run"
    run.mkdir(parents=True)
    grown = with_grown_weights(request("medium"), run)
    assert grown.init_from == str(run / "grown") and "--init-from" in grown.command(tmp_path / "runs")
    model, info = load_checkpoint(grown.init_from)
    assert (model.config.layers, model.config.stacks) == (13, 5) and info["training"]["steps"] == 7

    medium = save_checkpoint(tmp_path / "deeper", model)
    shrink = TrainingRequest("run", tmp_path / "data", "small", 4, 8, 1.0, str(medium), 1, "cpu")
    [size] = shrink.problems(tmp_path / "elsewhere")
    assert "deeper has 13 layers per stack, more than small: start from it as medium or large" in size


def wait_for_comparison(at: AppTest, seconds: float = 180) -> list[dict]:
    deadline = time.time() + seconds
    while time.time() < deadline:
        at.run()
        assert not at.exception, at.exception
        if "compare_job" not in at.session_state and "compare_results" in at.session_state:
            return at.session_state["compare_results"]
        time.sleep(0.2)
    raise AssertionError("the comparison did not finish")


def test_checkpoints_are_offered_default_first_then_by_validation_score():
    from studio.models import checkpoint_names, validation_bits
    from wavenet.checkpoint import DEFAULT_CHECKPOINT, list_checkpoints

    def card_bits(name: str) -> float:
        return json.loads((ROOT / "checkpoints" / name / "config.json").read_text())["evaluation"]["val_bits_per_sample"]

    shipped = checkpoint_names()[:len(list_checkpoints())]
    assert shipped[0] == DEFAULT_CHECKPOINT
    assert [card_bits(n) for n in shipped[1:]] == sorted(card_bits(n) for n in shipped[1:])
    assert [validation_bits(n) for n in shipped] == [card_bits(n) for n in shipped]


def test_the_picker_says_how_long_each_checkpoint_trained_so_a_big_name_does_not_mislead():
    at = page("generate")
    options = at.sidebar.selectbox(key="checkpoint").options
    for name in ("piano-small", "piano-large"):
        training = json.loads((ROOT / "checkpoints" / name / "config.json").read_text())["training"]
        hours = (training["samples_seen"] + (training.get("init_samples_seen") or 0)) / 16000 / 3600
        assert f"{name} · {hours:,.1f} h trained" in options
    assert options[0].startswith("piano-small · ")  # the default first


def test_compare_page_needs_two_checkpoints_or_compares_them():
    at = page("compare")
    assert not at.exception
    if at.warning:
        assert "at least two checkpoints" in at.warning[0].value
        return
    at.slider(key="compare_seconds").set_value(0.5)
    at.number_input(key="compare_variations").set_value(2)
    at.button(key="compare_go").click().run()
    at.slider(key="compare_temperature").set_value(0.9).run()  # touching a control does not stop it
    takes = wait_for_comparison(at)
    compared = len(at.session_state["compare_checkpoints"])
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value.columns) == compared  # side by side
    assert len(takes) == compared and not any(t.stopped_early for t in takes)
    assert len(at.get("audio")) == 2 * compared  # every variation of every model can be played
    assert sum(d.label == "⬇ WAV" for d in at.download_button) == 2 * compared  # ... and downloaded
    assert sum(d.label == "⬇ FLAC" for d in at.download_button) == 2 * compared
    assert all(t.audio.shape == (2, 8000) for t in takes)
    at.radio(key="compare_variation").set_value(1).run()
    assert not at.exception
    again = reopened("compare", at.session_state["visitor"])  # a reload keeps the comparison
    kept = again.session_state["compare_results"]
    assert [t.name for t in kept] == [t.name for t in takes] and np.array_equal(kept[1].audio, takes[1].audio)
    assert kept[0].snr == takes[0].snr and len(again.dataframe) == 1 and len(again.get("audio")) == 2 * compared
    assert again.session_state["compare_described"] == at.session_state["compare_described"]


def test_a_runs_kept_checkpoints_can_be_compared_with_each_other(tmp_path, monkeypatch):
    from studio.models import checkpoint_names

    card = json.loads((ROOT / "checkpoints" / "piano-small" / "config.json").read_text())
    for step in (25, 50):
        kept = tmp_path / "runs" / "stage" / "steps" / f"step{step:08d}"
        kept.mkdir(parents=True)
        (kept / "model.safetensors").write_bytes((ROOT / "checkpoints" / "piano-small" / "model.safetensors").read_bytes())
        training = {"steps": step, "samples_seen": step * 256_000, "init_samples_seen": 5_053_184_000}
        (kept / "config.json").write_text(json.dumps({**card, "training": training}))
    monkeypatch.chdir(tmp_path)
    at = page("compare")
    picker = at.multiselect(key="compare_checkpoints")
    # After the shipped ones, in step order, each with all the audio its weights heard.
    assert picker.options[-2:] == ["stage, step 25 · 87.8 h trained", "stage, step 50 · 88.0 h trained"]
    everything = checkpoint_names() + ["runs/stage/steps/step00000025", "runs/stage/steps/step00000050"]
    picker.set_value(everything).run()  # what "Select all" does: five, and none left out silently
    assert f"at most 4 at once: {len(everything)} are chosen" in at.warning[0].value
    assert at.button(key="compare_go").disabled
    picker.set_value(["runs/stage/steps/step00000025", "runs/stage/steps/step00000050"]).run()
    assert not at.warning and not at.button(key="compare_go").disabled
    at.slider(key="compare_seconds").set_value(0.5)
    at.button(key="compare_go").click().run()
    takes = wait_for_comparison(at)
    assert [t.audio.shape[1] for t in takes] == [8000, 8000]
    assert list(at.dataframe[0].value.columns) == ["stage, step 25", "stage, step 50"]


def test_stopping_a_comparison_keeps_what_was_sampled():
    from studio.comparison import get_comparison

    at = page("compare")
    if at.warning:
        pytest.skip("needs two checkpoints")
    at.slider(key="compare_seconds").set_value(60.0)
    at.button(key="compare_go").click().run()
    comparison = get_comparison(at.session_state["compare_job"])
    deadline = time.time() + 60
    while comparison.fraction == 0 and time.time() < deadline:  # the first checkpoint has sampled something
        time.sleep(0.2)
    again = reopened("compare", at.session_state["visitor"])  # reloaded while it samples: it carries on here
    again.button(key="compare_stop").click().run()
    [take] = wait_for_comparison(again)
    assert take.stopped_early and 0 < take.sampled_seconds < 60 and take.audio.shape[1] < 60 * 16000
    assert any("stopped early" in c.value for c in again.caption)
    assert any(f"stopped before {comparison.contenders[1].name}" in c.value for c in again.caption)
    assert not again.error  # a Stop is not a failure


def test_a_stopped_take_downloads_under_its_own_name_not_over_the_full_one():
    from studio.takes import Take
    from wavenet.sampler import GenerationSettings

    settings = GenerationSettings(seconds=4.0, seed=7).to_dict()
    full, stopped = (Take("generate", "piano-small", settings, np.zeros((1, 16000), np.float32), 16000, None, 5e4,
                          stopped_early) for stopped_early in (False, True))
    assert full.filename(0, "wav") == "piano-small_seed7_temp1.wav"
    assert stopped.filename(0, "wav") == "piano-small_seed7_temp1_stopped.wav"


def test_the_audio_route_streams_a_take_from_any_sample_on():
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from studio import live
    from studio.routes import ROUTES
    from wavenet.checkpoint import load_checkpoint
    from wavenet.sampler import GenerationSettings

    model, _ = load_checkpoint("piano-small")
    prime = tone(3.0)
    take = live.start_take(model, "piano-small", GenerationSettings(seconds=0.5, seed=3, include_prime=True), prime)
    deadline = time.time() + 60
    while not take.finished and time.time() < deadline:
        time.sleep(0.05)
    client = TestClient(Starlette(routes=ROUTES))
    whole = client.get(f"/wavenet/take/{take.id}").content
    assert len(whole) == 2 * (3 * 16000 + 8000)  # the prime, then the continuation
    for first in (40000, 50000, 56000, 90000):  # in the prime, past its end, at the take's end, beyond
        assert client.get(f"/wavenet/take/{take.id}?from={first}").content == whole[2 * first:]
    assert client.get(f"/wavenet/take/{take.id}?from=-1").status_code == 400
    assert client.get(f"/wavenet/take/{take.id}?from=²").status_code == 400
    assert client.get("/wavenet/take/none-such").status_code == 404


def test_a_failing_checkpoint_is_reported_and_the_comparison_goes_on_with_the_others():
    import copy

    from studio.comparison import Comparison, Contender
    from wavenet.checkpoint import load_checkpoint
    from wavenet.sampler import GenerationSettings

    model, _ = load_checkpoint("piano-small")
    broken = copy.deepcopy(model)
    broken.embed = None  # a model that cannot sample
    settings = GenerationSettings(seconds=0.25, seed=1)
    comparison = Comparison([Contender("broken", broken, {}), Contender("piano-small", model, {})], settings, "")
    comparison._run(session_gone=lambda: False)
    assert comparison.finished and list(comparison.errors) == ["broken"]
    assert [take.name for take in comparison.takes] == ["piano-small"] and comparison.left_out == []
    stopped_at_once = Comparison([Contender("piano-small", model, {})], settings, "")
    stopped_at_once.cancel.set()
    stopped_at_once._run(session_gone=lambda: False)  # a Stop before the first sample is no failure
    assert not stopped_at_once.errors and not stopped_at_once.takes and stopped_at_once.left_out == ["piano-small"]
    assert stopped_at_once._sample(0, stopped_at_once.contenders[0], lambda: False) is None  # nor mid-start-up


def test_a_run_that_accumulates_gradients_says_how_many_samples_a_step_takes(tmp_path):
    from studio.runs import find_runs
    from wavenet.train import step_samples

    run = tmp_path / "runs" / "cpu-stage"
    (run / "tb").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "model": {"layers": 10, "stacks": 5, "residual_channels": 32, "skip_channels": 256, "sample_rate": 16000},
        "settings": {"batch_size": 2, "accumulate": 4, "output_length": 16000, "lr": 5e-5, "precision": "float32",
                     "init_from": "checkpoints/piano-small"}, "data": "data/piano16k", "processes": 2}))
    [found] = find_runs(tmp_path / "runs", tmp_path / "checkpoints")
    assert found.description() == ("10×5, residual 32, skip 256, 16 kHz · 256,000 samples a step (2 × 16,000 × 4 "
                                   "accumulated × 2 processes) · lr 5e-05 · float32 · from checkpoints/piano-small · "
                                   "on data/piano16k")
    assert step_samples(found.settings(), found.record()["processes"]) == 256_000


def test_a_run_whose_training_process_holds_its_folder_counts_as_running_between_log_writes(tmp_path):
    from studio.runs import RunFolder

    run = tmp_path / "quiet"
    (run / "tb").mkdir(parents=True)
    (run / "tb" / "events.out.tfevents.1").write_bytes(b"")
    os.utime(run / "tb" / "events.out.tfevents.1", (time.time() - 3600, time.time() - 3600))
    assert not RunFolder("quiet", run).active
    (run / "in_use.pid").write_text(str(os.getpid()))  # as the trainer writes it
    assert RunFolder("quiet", run).active
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (run / "in_use.pid").write_text(finished.stdout.strip())  # a run killed before it could remove its lock
    assert not RunFolder("quiet", run).active
    (run / "in_use.pid").write_text(str(os.getpid()))
    os.utime(run / "in_use.pid", (time.time() - 86400, time.time() - 86400))  # a day-old lock whose pid came back
    assert not RunFolder("quiet", run).active
