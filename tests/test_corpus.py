import json

import numpy as np
import pytest

from wavenet.corpus import (NotePack, PianoSampler, build_corpus, note_number, perform, piece_order, render_dataset,
                            render_plan, skyline)
from wavenet.data import prepare




def test_scores_export_to_midi_notes_with_every_part_on_the_piano(score_cache):
    pack = NotePack.load(score_cache / "notes.npz")
    assert len(pack.names) == 2
    notes = pack.piece(0)
    assert notes.shape[1] == 4 and len(notes) > 50
    assert (notes[:, 1] > notes[:, 0]).all() and 30 < notes[:, 2].mean() < 80
    assert note_number("A0") == 21 and note_number("C8") == 108 and note_number("D#4") == 63


def test_render_plans_with_one_seed_are_prefixes_of_each_other(score_cache):
    """The held-out set (tools/heldout_set.py) relies on it: no plan of up to 24 h renders a piece outside the 24 h plan."""
    pack = NotePack.load(score_cache / "notes.npz")
    short, long = render_plan(pack, 0.001, seed=1), render_plan(pack, 1.0, seed=1)
    assert long[: len(short)] == short and len(long) > len(short)
    assert [index for index, round_number in long if round_number == 0] == piece_order(pack, 1)
    assert {round_number for _, round_number in long} == set(range(long[-1][1] + 1))  # every piece once, then again


def test_a_performance_varies_pitch_tempo_dynamics_timing_and_pedal_but_keeps_the_music(score_cache):
    notes = NotePack.load(score_cache / "notes.npz").piece(0)
    performed, settings = perform(notes, np.random.default_rng(0))
    assert len(performed) == len(notes)
    assert -3 <= settings["transpose"] <= 3 and 0.9 <= settings["tempo"] <= 1.1
    assert performed[:, 3].std() > 3  # velocities are no longer flat
    again, _ = perform(notes, np.random.default_rng(0))
    assert np.array_equal(performed, again)


def test_the_sampler_renders_notes_where_they_are_played(score_cache):
    sampler = PianoSampler(score_cache / "bank16k.npz")
    notes = np.array([[0.5, 1.0, 60, 100], [1.5, 2.0, 62, 40]], dtype=np.float32)
    audio = sampler.render(notes)
    assert audio.dtype == np.float32
    assert np.abs(audio[: 8000]).max() == 0  # silence before the first onset
    loud, soft = np.abs(audio[8000:16000]).max(), np.abs(audio[24000:32000]).max()
    assert loud > soft > 0


def test_corpus_renders_flac_files_with_provenance_and_resumes(score_cache, tmp_path):
    summary = build_corpus(tmp_path / "corpus", hours=0.05, sample_rate=16000, workers=1, seed=0, cache=score_cache,
                           progress=False)
    manifest = json.loads((tmp_path / "corpus" / "corpus.json").read_text())
    assert summary["files"] == len(manifest["files"]) >= 2
    assert any("Salamander" in credit for credit in manifest["credits"])
    entry = next(iter(manifest["files"].values()))
    assert {"piece", "transpose", "tempo", "pedal", "seconds"} <= set(entry)
    files = sorted((tmp_path / "corpus" / "audio").glob("*.flac"))
    stamps = [f.stat().st_mtime_ns for f in files]
    build_corpus(tmp_path / "corpus", hours=0.05, sample_rate=16000, workers=1, seed=0, cache=score_cache, progress=False)
    assert [f.stat().st_mtime_ns for f in files] == stamps
    prepared = prepare(tmp_path / "corpus", tmp_path / "prepared", 16000, 1.0, 0.5, progress=False)
    by_piece = {}
    for source, info in prepared["sources"].items():
        by_piece.setdefault(manifest["groups"][source], set()).add(info["split"])
    assert all(len(splits) == 1 for splits in by_piece.values())


def test_render_dataset_writes_a_training_set_directly(score_cache, tmp_path):
    manifest = render_dataset(score_cache / "notes.npz", score_cache / "bank16k.npz", tmp_path / "data", hours=0.05, workers=1,
                              seed=1, clip_seconds=1.0, val_fraction=0.5, progress=False)
    assert manifest["train_clips"] > 0 and manifest["val_clips"] > 0


def test_a_training_set_can_leave_an_evaluation_sets_scores_out(score_cache, tmp_path):
    names = set(NotePack.load(score_cache / "notes.npz").names)
    left_out = sorted(names)[:1]
    manifest = render_dataset(score_cache / "notes.npz", score_cache / "bank16k.npz", tmp_path / "data", hours=0.05, workers=1,
                              seed=1, clip_seconds=1.0, progress=False, exclude_scores=frozenset(left_out))
    rendered = {source["group"] for source in manifest["sources"].values()}
    assert rendered == names - set(left_out) and "without 1 held-out scores" in manifest["description"]
    with pytest.raises(ValueError, match="not in the note pack"):
        render_dataset(score_cache / "notes.npz", score_cache / "bank16k.npz", tmp_path / "other", hours=0.05, workers=1,
                       seed=1, progress=False, exclude_scores=frozenset({"no such score"}))


def test_the_melody_texture_keeps_one_line_the_top_voice_without_overlaps(score_cache):
    chorale = NotePack.load(score_cache / "notes.npz").piece(0)  # four voices
    line = skyline(chorale)
    assert 0 < len(line) < len(chorale) / 2
    assert (line[1:, 0] >= line[:-1, 1] - 1e-6).all()  # never two notes at once
    soprano_onsets = {round(float(t), 3) for t in line[:, 0]}
    for onset, pitch in chorale[:, [0, 2]]:  # where a kept note starts, no higher note starts with it
        if round(float(onset), 3) in soprano_onsets:
            kept = line[np.isclose(line[:, 0], onset)][0]
            assert pitch <= kept[2]


def test_a_melody_corpus_records_its_texture_and_uses_no_pedal(score_cache, tmp_path):
    build_corpus(tmp_path / "corpus", hours=0.02, sample_rate=16000, workers=1, seed=0, cache=score_cache, progress=False,
                 texture="melody")
    manifest = json.loads((tmp_path / "corpus" / "corpus.json").read_text())
    assert manifest["texture"] == "melody"
    assert all(f["texture"] == "melody" and not f["pedal"] for f in manifest["files"].values())
