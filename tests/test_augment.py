import numpy as np
import pytest
import torch

import wavenet.augment as augment
from wavenet import mulaw
from wavenet.augment import RecordingChain
from wavenet.data import ClipSet, prepare

RATE = 16000


def click_rows(chain: RecordingChain, rows: int, at: int = 100) -> torch.Tensor:
    audio = torch.zeros(rows, chain.head + RATE)
    audio[:, chain.head + at] = 0.5
    return audio


@pytest.fixture
def only(monkeypatch):
    """Switch every part of the chain off, then back on one at a time."""
    for name, value in [("LOWPASS_PROBABILITY", 0.0), ("ROOM_PROBABILITY", 0.0), ("NOISE_PROBABILITY", 0.0),
                        ("EQ_RANGE_DB", 0.0), ("GAIN_DB", 0.0)]:
        monkeypatch.setattr(augment, name, value)
    return lambda name, value: monkeypatch.setattr(augment, name, value)


def test_without_augmentation_the_crops_pass_unchanged_minus_the_run_up():
    chain = RecordingChain(RATE, probability=0.0)
    crops = torch.randint(0, 256, (3, chain.head + 500), dtype=torch.uint8)
    assert torch.equal(chain.apply(crops, torch.Generator().manual_seed(0)), crops[:, chain.head:])


def test_a_chain_with_every_part_off_keeps_every_sample_in_place(only):
    chain = RecordingChain(RATE, probability=1.0)
    crops = torch.randint(1, 256, (4, chain.head + 3000), dtype=torch.uint8)
    assert torch.equal(chain.apply(crops, torch.Generator().manual_seed(0)), crops[:, chain.head:])


def test_chains_are_drawn_from_the_generator_so_a_resumed_run_repeats_them():
    chain = RecordingChain(RATE, probability=1.0)
    crops = torch.randint(100, 156, (4, chain.head + 2000), dtype=torch.uint8)
    first = chain.apply(crops, torch.Generator().manual_seed(7))
    assert torch.equal(first, chain.apply(crops, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, chain.apply(crops, torch.Generator().manual_seed(8)))


def test_the_equaliser_never_reacts_before_the_sound(only):
    only("EQ_RANGE_DB", 6.0)
    only("LOWPASS_PROBABILITY", 0.5)
    chain = RecordingChain(RATE, probability=1.0)
    out = chain.record(click_rows(chain, 16), torch.Generator().manual_seed(3))
    assert out[:, :100].abs().max() < 1e-4  # causal (a zero-phase EQ rings ~1 % before the click)
    assert (out.abs().argmax(dim=1) - 100).abs().max() <= 3  # the click stays where it was
    assert not torch.allclose(out[0], out[1])  # each row has its own curve


def test_a_room_rings_on_with_a_decay_inside_the_rt60_range(only):
    only("ROOM_PROBABILITY", 1.0)
    chain = RecordingChain(RATE, probability=1.0)
    out = chain.record(click_rows(chain, 8), torch.Generator().manual_seed(1)).numpy()
    window = RATE // 20
    for row in out:
        energy = [10 * np.log10(np.square(row[start: start + window]).sum() + 1e-20)
                  for start in range(100 + window, 100 + 5 * window, window)]
        decay_db_per_s = -np.polyfit(np.arange(len(energy)) / 20, energy, 1)[0]
        assert 60 / 1.0 * 0.7 < decay_db_per_s < 60 / 0.2 * 1.3  # 60 dB in RT60 = 0.2–1.0 s


def test_noise_is_quiet_and_between_white_and_pink(only):
    only("NOISE_PROBABILITY", 1.0)
    chain = RecordingChain(RATE, probability=1.0)
    noise = chain.record(torch.zeros(16, chain.head + RATE), torch.Generator().manual_seed(2)).numpy()
    level_db = 10 * np.log10(np.square(noise).mean(axis=1))
    assert level_db.min() > -71 and level_db.max() < -44
    spectrum = np.abs(np.fft.rfft(noise, axis=1)) ** 2
    octave_bands = [spectrum[:, 2 ** k: 2 ** (k + 1)].mean(axis=1) for k in range(6, 12)]  # 64 Hz–4 kHz
    slopes = np.polyfit(np.arange(6) * np.log10(2), 10 * np.log10(np.array(octave_bands)), 1)[0] / 10
    assert slopes.min() > -1.2 and slopes.max() < 0.2  # power ∝ f^-c, c in [0, 1]


def test_the_whole_chain_never_clips_and_silence_gains_noise_in_about_half_the_chains():
    chain = RecordingChain(RATE, probability=1.0)
    loud = chain.record(click_rows(chain, 32) * 1.9, torch.Generator().manual_seed(4))
    assert loud.abs().max() <= augment.PEAK_LIMIT + 1e-6
    silence = chain.apply(torch.full((32, chain.head + RATE), mulaw.SILENCE, dtype=torch.uint8),
                          torch.Generator().manual_seed(2))
    noisy = (silence != mulaw.SILENCE).any(dim=1)
    assert 6 <= int(noisy.sum()) <= 26  # NOISE_PROBABILITY 0.5


def test_augmented_real_piano_stays_the_same_music_in_the_same_place(tmp_path, piano_clip):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "clip.wav").write_bytes(piano_clip.read_bytes())
    prepare(tmp_path / "src", tmp_path / "data", RATE, 3.0, 0.0, progress=False)
    chain = RecordingChain(RATE, probability=1.0)
    crops = ClipSet.load(tmp_path / "data", "train").random_crops(8, RATE, torch.Generator().manual_seed(3),
                                                                  history=chain.head)
    dry = mulaw.decode(crops[:, chain.head:].numpy())
    wet = mulaw.decode(chain.apply(crops, torch.Generator().manual_seed(3)).numpy())

    def correlation(shift: int) -> float:
        return float(np.mean([np.corrcoef(d[50:-50], np.roll(w, shift)[50:-50])[0, 1] for d, w in zip(dry, wet)]))

    assert 0.5 < correlation(0) < 0.999  # the same notes, not the same signal
    assert correlation(0) > max(correlation(-3), correlation(3)) + 0.05  # and not shifted in time


def test_history_before_a_window_does_not_change_the_windows_drawn():
    clips = ClipSet(torch.arange(2 * 50, dtype=torch.uint8).view(2, 50) + 1, RATE)
    plain = clips.random_crops(64, 10, torch.Generator().manual_seed(5))
    longer = clips.random_crops(64, 10, torch.Generator().manual_seed(5), history=20)
    assert torch.equal(longer[:, 20:], plain)
    starts = plain[:, 0].long() - 1 - 50 * (plain[:, 0].long() > 50)
    for row, start in zip(longer, starts):  # silence before the clip's first sample, the clip after it
        assert (row[: max(0, 20 - int(start))] == mulaw.SILENCE).all()
        assert (row[max(0, 20 - int(start)):20] != mulaw.SILENCE).all()


def test_history_noise_moves_inputs_by_about_the_drawn_classes_and_never_out_of_range():
    crops = torch.full((64, 4000), mulaw.SILENCE, dtype=torch.uint8)
    crops[:, ::50] = 255  # full-scale samples: noise must clamp, not wrap around
    noisy = augment.noisy_history(crops, 2.0, torch.Generator().manual_seed(1))
    assert noisy.dtype == torch.uint8 and noisy.shape == crops.shape
    spread = (noisy.float() - crops.float())[:, 1::50].std(dim=1)  # away from the clamped samples
    assert spread.min() < 0.5 and 1.5 < spread.max() < 2.2  # each crop its own level, up to 2 classes
    assert noisy[:, ::50].max() == 255 and noisy[:, ::50].min() >= 250


def test_history_noise_is_drawn_from_the_generator_and_zero_means_untouched():
    crops = torch.randint(0, 256, (4, 1000), dtype=torch.uint8)
    assert augment.noisy_history(crops, 0.0, torch.Generator().manual_seed(1)) is crops
    first, again = (augment.noisy_history(crops, 1.0, torch.Generator().manual_seed(7)) for _ in range(2))
    assert torch.equal(first, again) and not torch.equal(first, crops)
