import numpy as np
import pytest
import torch

from wavenet.analysis import (attack_rate, bits_per_sample, continuation_flatness, cqt, cqt_png, envelope,
                              following_flatness, linear_prediction_bits, snr, spectral_flatness)
from conftest import random_model
from wavenet.model import WaveNet


@pytest.mark.parametrize("target_db", [-10.0, 0.0, 10.0, 20.0, 40.0, 60.0])
def test_snr_matches_the_known_snr_of_a_tone_with_harmonics_dc_and_white_noise(target_db):
    rng = np.random.default_rng(int(target_db) + 100)
    n = 16000
    t = np.arange(n)
    amplitude = 0.8
    sigma = np.sqrt(amplitude**2 / 2 / 10 ** (target_db / 10))
    x = (amplitude * np.sin(2 * np.pi * 0.0421 * t) + 0.3 * amplitude * np.sin(2 * np.pi * 0.0842 * t)
         + 0.1 * amplitude * np.sin(2 * np.pi * 0.1263 * t) + 0.2 + sigma * rng.standard_normal(n))
    # at -10 dB the noise inside the tone's main lobe counts as signal, as in MATLAB: a small bias
    assert snr(x) == pytest.approx(target_db, abs=0.6 if target_db >= 0 else 1.0)


def test_snr_refuses_what_it_cannot_measure():
    with pytest.raises(ValueError):
        snr(np.array([1.0, np.nan] * 10))
    with pytest.raises(ValueError):
        snr(np.zeros((4, 4)))


def test_cqt_finds_a_tone_at_its_piano_key():
    rate = 16000
    a4 = np.sin(2 * np.pi * 440 * np.arange(rate) / rate).astype(np.float32)
    result = cqt(a4, rate)
    assert result.notes[0] == "A0" and len(result.notes) == result.db.shape[0] == 88
    loudest = result.notes[int(result.db[:, result.db.shape[1] // 2].argmax())]
    assert loudest == "A4"
    assert result.db.max() == pytest.approx(0, abs=1e-4) and result.times[1] == pytest.approx(256 / rate)
    assert cqt_png(a4, rate)[:4] == b"\x89PNG"


def test_envelope_keeps_the_extremes_of_long_audio():
    audio = np.zeros(100_000, np.float32)
    audio[12_345] = 0.9
    audio[77_777] = -0.7
    positions, low, high = envelope(audio, points=1000)
    assert len(positions) == len(low) == len(high) == 1000
    assert high.max() == pytest.approx(0.9) and low.min() == pytest.approx(-0.7)


def test_bits_per_sample_is_near_8_for_an_untrained_model_and_counts_every_sample(tiny_config):
    torch.manual_seed(0)
    model = WaveNet(tiny_config).eval()
    audio = np.random.default_rng(0).uniform(-1, 1, 5000).astype(np.float32)
    nats, bits = bits_per_sample(model, audio, chunk=700)
    whole, _ = bits_per_sample(model, audio, chunk=100_000)
    assert bits == pytest.approx(nats / np.log(2)) and 7.5 < bits < 8.5
    assert nats == pytest.approx(whole, rel=1e-4)  # chunking with context changes nothing


def test_spectral_flatness_tells_pitched_notes_from_noise_and_ignores_silence():
    rate = 16000
    t = np.arange(rate * 2) / rate
    tone = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in (1, 2, 3, 4)) * np.exp(-2 * (t % 0.5))
    noise = np.random.default_rng(0).normal(0, 0.3, len(t))
    assert spectral_flatness(tone) < 0.01 < 0.3 < spectral_flatness(noise)
    quiet_then_tone = np.concatenate([np.zeros(rate), tone])
    assert spectral_flatness(quiet_then_tone) < 0.01


def test_linear_prediction_finds_decaying_notes_predictable_and_white_noise_not():
    rate = 16000
    t = np.arange(rate * 2) / rate
    notes = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in (1, 2, 3)) * 0.3 * np.exp(-1.5 * (t % 0.5))
    noise = np.clip(np.random.default_rng(0).laplace(0, 0.2, len(t)), -1, 1)
    predictable, unpredictable = linear_prediction_bits(notes), linear_prediction_bits(noise)
    assert predictable < 3.0 and unpredictable > 6.0, (predictable, unpredictable)
    assert linear_prediction_bits(np.zeros(rate)) < 0.1  # silence is certain


def test_attack_rate_counts_struck_notes_not_noise_drones_or_silence():
    rate = 16000
    t = np.arange(rate * 4) / rate
    struck = np.zeros_like(t)
    for note in range(8):  # one decaying note every 0.5 s; the first, at the very start, is not counted
        after = t >= note * 0.5
        since = t[after] - note * 0.5
        struck[after] += 0.3 * np.sin(2 * np.pi * 220 * 2 ** (note / 12) * since) * np.exp(-since / 0.15)
    noise = np.random.default_rng(0).normal(0, 0.05, len(t))
    drone = 0.3 * np.sin(2 * np.pi * 220 * t)
    assert attack_rate(struck, rate) == pytest.approx(7 / 4)
    assert attack_rate(struck + noise / 5, rate) >= 1.25
    assert attack_rate(noise, rate) == attack_rate(drone + noise, rate) == 0.0
    assert attack_rate(np.zeros_like(t), rate) == attack_rate(np.ones(100), rate) == 0.0


def test_continuation_flatness_shows_a_noisy_model_dissolving_the_steady_notes_it_was_given(tiny_config):
    t = np.arange(4 * 16000) / 16000
    clips = [(0.4 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in (220.0, 330.0, 440.0)]
    real = following_flatness(clips, 16000, prime_seconds=3.0)
    assert real < 0.01 and continuation_flatness(random_model(tiny_config), clips, prime_seconds=3.0) > 10 * real
