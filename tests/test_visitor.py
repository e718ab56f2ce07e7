"""Takes kept on disk per visitor: exact, never half-read, forgotten only after a long absence."""
import os
import time

import numpy as np
import pytest

from studio.visitor import VisitorStore, forget_old_visitors

VISITOR = "0123456789abcdef0123456789abcdef"


def test_a_take_comes_back_exactly_and_a_half_written_one_is_not_listed(tmp_path):
    store = VisitorStore(tmp_path, VISITOR)
    audio = np.random.default_rng(0).uniform(-1, 1, (2, 1000)).astype(np.float32)
    store.put("first", {"seed": np.int64(7), "temperature": 0.9}, audio)
    (store.folder / "second.npz.part").write_bytes(b"cut short")  # a studio killed while writing
    store.put("third", {"seed": 8}, audio)
    whole = (store.folder / "third.npz").read_bytes()
    (store.folder / "third.npz").write_bytes(whole[: len(whole) // 2])  # damaged on disk since
    [(key, settings, kept)] = list(store.items())
    assert key == "first" and settings == {"seed": 7, "temperature": 0.9}
    assert np.array_equal(kept, audio)
    store.remove("first")
    assert list(store.items()) == []


def test_what_is_running_is_remembered_by_page_and_forgotten_only_by_its_own_end(tmp_path):
    store = VisitorStore(tmp_path, VISITOR)
    store.forget_running("generate", "abc")
    assert not store.folder.exists()  # a visit that makes nothing leaves nothing on disk
    store.note_running("generate", "abc")
    store.note_running("continue", "def")
    store.note_running("generate", "newer")  # another tab started a take since
    store.forget_running("generate", "abc")  # ... so the first take's end leaves it be
    assert store.running() == {"generate": "newer", "continue": "def"}
    store.forget_running("generate", "newer")
    assert store.running() == {"continue": "def"}
    (store.folder / "running.json").write_text("[not")
    assert store.running() == {}


def test_only_a_real_visitor_id_names_a_folder(tmp_path):
    for made_up in ("../" + VISITOR, VISITOR.upper(), "", VISITOR + "0"):
        with pytest.raises(ValueError):
            VisitorStore(tmp_path, made_up)


def test_visitors_away_for_the_keeping_time_are_forgotten(tmp_path):
    away, back, other = tmp_path / ("a" * 32), tmp_path / ("b" * 32), tmp_path / "not-a-visitor"
    for folder in (away, back, other):
        folder.mkdir()
    long_ago = time.time() - 31 * 86400
    for folder in (away, other):
        os.utime(folder, (long_ago, long_ago))
    forget_old_visitors(tmp_path, keep_days=30)
    assert not away.exists() and back.exists() and other.exists()
    forget_old_visitors(tmp_path / "missing")  # no store yet: nothing to do


def test_a_page_keeps_its_last_upload_and_a_cut_short_one_is_not_offered(tmp_path):
    store = VisitorStore(tmp_path, VISITOR)
    assert store.kept_upload("continue") is None
    store.keep_upload("continue", "mine.wav", b"RIFF....")
    store.keep_upload("continue", "newer.flac", b"fLaC" * 100)
    assert store.kept_upload("continue") == ("newer.flac", b"fLaC" * 100)
    (store.folder / "uploads" / "continue.clip").write_bytes(b"fLaC")  # damaged since
    assert store.kept_upload("continue") is None


def test_the_controls_come_back_as_left_and_damaged_ones_are_ignored(tmp_path):
    store = VisitorStore(tmp_path, VISITOR)
    assert store.controls() == {}
    store.set_controls({"generate_seconds": 7.5, "generate_seed": np.int64(3), "continue_region": (0.5, 1.5)})
    assert store.controls() == {"generate_seconds": 7.5, "generate_seed": 3, "continue_region": [0.5, 1.5]}
    assert list(store.items()) == []  # not mistaken for a take
    (store.folder / "controls.json").write_text("{cut")
    assert store.controls() == {}
