import json

import numpy as np
import pytest
import soundfile as sf
import torch

from wavenet import mulaw
from wavenet.cli import main
from wavenet.data import ClipSet, DataError, DatasetWriter, prepare, stretches_in
from conftest import tone


def make_recordings(folder, count=6, seconds=3.2):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sf.write(folder / f"piece{i}.wav", tone(seconds, 22050, freq=200 + 50 * i), 22050)


def test_prepare_cuts_clips_splits_by_recording_and_writes_a_manifest(tmp_path):
    make_recordings(tmp_path / "src")
    (tmp_path / "src" / "broken.wav").write_bytes(b"not audio")
    manifest = prepare(tmp_path / "src", tmp_path / "out", 16000, 1.0, 0.34, seed=0, progress=False)
    assert manifest["train_clips"] + manifest["val_clips"] == 18  # 3 whole clips of 1 s per recording
    assert list(manifest["skipped"]) == ["broken.wav"]
    splits = {s["split"] for s in manifest["sources"].values()}
    assert splits == {"train", "val"}
    val_sources = {k for k, s in manifest["sources"].items() if s["split"] == "val"}
    assert 1 <= len(val_sources) <= 5
    train = ClipSet.load(tmp_path / "out", "train")
    assert train.clips.shape == (3 * (6 - len(val_sources)), 16000) and train.clips.dtype == torch.uint8
    again = prepare(tmp_path / "src", tmp_path / "out2", 16000, 1.0, 0.34, seed=0, progress=False)
    assert {k for k, s in again["sources"].items() if s["split"] == "val"} == val_sources


def test_a_recording_stays_on_its_side_of_the_split_whatever_else_the_dataset_holds():
    from wavenet.data import split_groups

    pieces = [f"score{i}" for i in range(400)]
    small, large = split_groups(pieces[:150], 0.1, seed=1), split_groups(pieces, 0.1, seed=1)
    assert small == large & set(pieces[:150])  # no score is validation in one and training in the other
    assert 0.05 < len(large) / len(pieces) < 0.15
    assert split_groups(pieces, 0.1, seed=2) != large


def test_prepare_resumes_without_redoing_finished_sources(tmp_path):
    make_recordings(tmp_path / "src", count=3)
    prepare(tmp_path / "src", tmp_path / "out", 16000, 1.0, 0.34, progress=False)
    shard = next((tmp_path / "out" / "clips").glob("*.u8"))
    stamp = shard.stat().st_mtime_ns
    sf.write(tmp_path / "src" / "new.wav", tone(2.5, 16000), 16000)
    manifest = prepare(tmp_path / "src", tmp_path / "out", 16000, 1.0, 0.34, progress=False)
    assert shard.stat().st_mtime_ns == stamp
    assert len(manifest["sources"]) == 4


def test_a_single_recording_is_split_by_time(tmp_path, piano_clip):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "clip.wav").write_bytes(piano_clip.read_bytes())
    manifest = prepare(tmp_path / "src", tmp_path / "out", 16000, 5.0, 0.2, progress=False)
    assert (manifest["train_clips"], manifest["val_clips"]) == (7, 2)
    val = ClipSet.load(tmp_path / "out", "val").clips.numpy()
    audio, _ = sf.read(piano_clip, dtype="float32")
    assert np.array_equal(val[-1], mulaw.encode(audio[8 * 80000 : 9 * 80000]))


def test_random_crops_are_reproducible_windows_of_one_recording_that_may_run_across_its_clips(tmp_path):
    make_recordings(tmp_path / "src", count=2)
    prepare(tmp_path / "src", tmp_path / "out", 16000, 1.0, 0.0, progress=False)
    clips = ClipSet.load(tmp_path / "out", "train")
    assert clips.stretch_clips.tolist() == [3, 3] and clips.longest_stretch == 48000
    a = clips.random_crops(16, 40000, torch.Generator().manual_seed(3))
    b = clips.random_crops(16, 40000, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (16, 40000)
    recordings = [source.numpy().tobytes() for source in clips.clips.reshape(2, -1)]
    assert all(sum(crop.numpy().tobytes() in audio for audio in recordings) == 1 for crop in a)
    with pytest.raises(DataError, match="the longest unbroken stretch has 48000"):
        clips.random_crops(1, 48001, torch.Generator())


def test_every_window_of_every_recording_is_drawn_and_none_spans_two():
    first, second = torch.full((2, 4), 10, dtype=torch.uint8), torch.full((1, 4), 20, dtype=torch.uint8)
    first[1] = 11  # recording one: 10 10 10 10 11 11 11 11; recording two: 20 20 20 20
    clips = ClipSet(torch.cat([first, second]), 16000, torch.tensor([2, 1]))
    crops = clips.random_crops(2000, 3, torch.Generator().manual_seed(0), history=2)
    windows = {tuple(crop.tolist()) for crop in crops}
    silence = mulaw.SILENCE
    assert windows == {(silence, silence, 10, 10, 10), (silence, 10, 10, 10, 10), (10, 10, 10, 10, 11),
                       (10, 10, 10, 11, 11), (10, 10, 11, 11, 11), (10, 11, 11, 11, 11),
                       (silence, silence, 20, 20, 20), (silence, 20, 20, 20, 20)}
    from_first = sum(crop[-1] != 20 for crop in crops) / len(crops)
    assert 0.7 < from_first < 0.8  # 6 of the 8 windows: each window is as likely


def test_a_window_never_spans_a_dropped_silent_clip_nor_the_split_of_one_recording(tmp_path):
    audio = 0.3 * np.sin(np.arange(10 * 16000) * 0.05).astype(np.float32)  # ten 1 s clips
    audio[3 * 16000 : 4 * 16000] = 0  # the fourth is silent: dropped, and the audio either side is not joined
    writer = DatasetWriter(tmp_path / "data", 16000, 1.0, 0.2, seed=0)
    writer.add("only", audio, group="only")
    manifest = writer.finish()
    assert manifest["sources"]["only"]["clips"] == 9 and manifest["sources"]["only"]["stretches"] == [3, 6]
    train, val = ClipSet.load(tmp_path / "data", "train"), ClipSet.load(tmp_path / "data", "val")
    assert train.stretch_clips.tolist() == [3, 4] and val.stretch_clips.tolist() == [2]  # its last 2 s validate
    assert train.reachable_share(4 * 16000) == pytest.approx(4 / 7)

    del manifest["sources"]["only"]["stretches"]  # as written before stretches were recorded
    (tmp_path / "data" / "manifest.json").write_text(json.dumps(manifest))
    assert ClipSet.load(tmp_path / "data", "train").stretch_clips.tolist() == [1] * 7  # where the gap was is unknown
    assert stretches_in({"clips": 3, "seconds": 3.2}, range(3), 16000, 16000) == [3]  # nothing dropped: one stretch


def test_prepare_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    (tmp_path / "empty").mkdir()
    assert main(["prepare", str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'missing'}: no such folder",
                   f"error: {tmp_path / 'empty'}: no audio files (.wav, .flac, .ogg, .mp3) found"]
    make_recordings(tmp_path / "src", count=2)
    assert main(["prepare", str(tmp_path / "src"), str(tmp_path / "out"), "--clip-seconds", "1"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["sample_rate"] == 16000


def test_a_single_short_recording_trains_on_its_only_clip(tmp_path):
    (tmp_path / "src").mkdir()
    sf.write(tmp_path / "src" / "short.wav", tone(1.5), 16000)
    manifest = prepare(tmp_path / "src", tmp_path / "out", 16000, 1.0, 0.2, progress=False)
    assert (manifest["train_clips"], manifest["val_clips"]) == (1, 0)


def test_an_interrupted_prepare_keeps_what_it_finished(tmp_path, monkeypatch):
    import wavenet.data as data

    make_recordings(tmp_path / "src", count=3)
    calls = []
    real_load = data.load_audio

    def flaky_load(path, *args, **kwargs):
        calls.append(path.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(data, "load_audio", flaky_load)
    try:
        prepare(tmp_path / "src", tmp_path / "out", 16000, 1.0, 0.34, progress=False)
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(data, "load_audio", real_load)
    recorded = json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"]
    assert sorted(recorded) == ["piece0.wav", "piece1.wav"]
    manifest = prepare(tmp_path / "src", tmp_path / "out", 16000, 1.0, 0.34, progress=False)
    assert len(manifest["sources"]) == 3


def test_an_evaluation_set_is_scored_but_never_trained_on(tmp_path, capsys):
    make_recordings(tmp_path / "src")
    writer = DatasetWriter(tmp_path / "heldout", 16000, 1.0, 0.5, seed=0)
    for path in sorted((tmp_path / "src").glob("*.wav")):
        writer.add(path.stem, tone(3.2), group=path.stem)
    manifest = writer.finish("held out", evaluation_only=True)
    assert manifest["train_clips"] > 0 and len(ClipSet.load(tmp_path / "heldout", "val")) == manifest["val_clips"]
    code = main(["train", "--data", str(tmp_path / "heldout"), "--run-dir", str(tmp_path / "run"),
                 "--preset", "small", "--residual-channels", "4", "--skip-channels", "8", "--max-steps", "1"])
    assert code == 2 and "is an evaluation set (held out)" in capsys.readouterr().err
    assert not (tmp_path / "run" / "last").exists()
