"""tools/compare_weights.py's held-out continuation: how fast a model's own sampling dissolves notes it was given."""
import numpy as np

from tests.conftest import random_model
from tools.compare_weights import PRIME_SECONDS, followed_second, held_out_continuations


def test_a_noisy_model_dissolves_the_steady_notes_it_was_given(tiny_config):
    t = np.arange(int((PRIME_SECONDS + 1) * 16000)) / 16000
    clips = [(0.4 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in (220.0, 330.0, 440.0)]
    real = followed_second(clips, 16000)
    added = held_out_continuations(random_model(tiny_config), clips)
    assert real < 0.01 and added > 10 * real
