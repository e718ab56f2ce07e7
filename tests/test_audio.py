import io

import numpy as np
import pytest
import soundfile as sf

from wavenet.audio import (AudioError, audio_bytes, format_by_signature, load_audio, read_clip, save_audio,
                           sound_starts)
from conftest import tone


@pytest.mark.parametrize("fmt, suffix", [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg"), ("MP3", ".mp3")])
def test_every_supported_format_loads_as_mono_float32_at_the_target_rate(tmp_path, fmt, suffix):
    stereo = np.stack([tone(1.0, 44100), tone(1.0, 44100, freq=220)], axis=1)
    path = tmp_path / f"clip{suffix}"
    sf.write(path, stereo, 44100, format=fmt)
    audio = load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 16000) < 1200  # MP3 adds encoder padding
    assert 0.2 < np.abs(audio).max() <= 1.0
    clip = read_clip(path, 16000)
    assert (clip.channels, clip.file_rate) == (2, 44100) and np.array_equal(clip.audio, audio)


def test_the_real_piano_clip_loads(piano_clip):
    audio = load_audio(piano_clip, 16000)
    assert len(audio) == 45 * 16000


def test_bytes_of_an_upload_load_like_a_file():
    audio = load_audio(audio_bytes(tone(0.5), 16000, "FLAC"), 8000)
    assert len(audio) == 4000


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk", "looks like a WAV file but cannot be decoded: it is damaged or cut short"),
    (b"%PDF-1.4 definitely not audio" * 10, "not a readable audio file"),
])
def test_unreadable_files_give_a_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=message):
        load_audio(path, 16000)


def test_empty_silent_non_finite_too_long_and_missing_input_are_named(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="no audio samples|not a readable"):
        load_audio(tmp_path / "empty.wav", 16000)
    sf.write(tmp_path / "silent.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(AudioError, match="silent"):
        load_audio(tmp_path / "silent.wav", 16000)
    assert len(load_audio(tmp_path / "silent.wav", 16000, allow_silence=True)) == 16000
    nan = tone(0.1)
    nan[10] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        load_audio(tmp_path / "nan.wav", 16000)
    sf.write(tmp_path / "long.wav", tone(3.0), 16000)
    with pytest.raises(AudioError, match="limit is 2 s"):
        load_audio(tmp_path / "long.wav", 16000, max_seconds=2)
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "missing.wav", 16000)


def test_saved_wav_is_pcm16_and_flac_round_trips(tmp_path):
    audio = tone(0.5)
    save_audio(tmp_path / "a.wav", audio, 16000)
    save_audio(tmp_path / "a.flac", audio, 16000)
    assert sf.info(tmp_path / "a.wav").subtype == "PCM_16"
    back, rate = sf.read(tmp_path / "a.flac", dtype="float32")
    assert rate == 16000 and np.abs(back - audio).max() < 1e-4
    with pytest.raises(AudioError):
        save_audio(tmp_path / "a.mp4", audio, 16000)


def test_a_prime_can_start_where_the_sound_does_not_in_the_lead_in(piano_clip):
    lead_in = np.concatenate([np.zeros(8000, np.float32), 1e-4 * np.ones(800, np.float32), tone(1.0)])
    assert sound_starts(lead_in, 16000) == pytest.approx(0.55, abs=0.011)  # past silence and faint hiss
    assert sound_starts(np.zeros(16000, np.float32), 16000) == 0.0
    assert sound_starts(np.zeros(0, np.float32), 16000) == 0.0
    clip = load_audio(piano_clip, 16000)
    assert 0.0 <= sound_starts(clip, 16000) < 1.0


@pytest.mark.parametrize("kind, subtype", [("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_a_file_cut_short_is_called_damaged_not_unknown(kind, subtype):
    whole = io.BytesIO()
    sf.write(whole, tone(3.0), 16000, format=kind, subtype=subtype)
    article = "an" if kind == "OGG" else "a"
    with pytest.raises(AudioError, match=f"^the upload looks like {article} {kind} file but cannot be decoded: "
                                         "it is damaged or cut short$"):
        load_audio(whole.getvalue()[: len(whole.getvalue()) // 3], 16000)


def test_a_wav_cut_short_gives_the_part_that_is_there():
    whole = audio_bytes(tone(3.0), 16000)
    assert 0 < len(load_audio(whole[: len(whole) // 3], 16000)) < 16000


@pytest.mark.parametrize("head, kind", [
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "WAV"), (b"fLaC\x00\x00\x00\x22", "FLAC"), (b"OggS\x00\x02", "OGG"),
    (b"ID3\x04\x00\x00", "MP3"), (b"\xff\xfb\x90\x64", "MP3"),  # MPEG-1 Layer III frame header
    (b"\xff\xfeh\x00e\x00", None),  # a UTF-16 text file's byte-order mark
    (b"\xff\xf1\x50\x80", None),  # AAC (ADTS)
    (b"%PDF-1.4", None), (b"", None),
])
def test_a_files_first_bytes_name_its_audio_format(head, kind):
    assert format_by_signature(head) == kind
