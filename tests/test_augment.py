import numpy as np
import torch

from wavenet import mulaw
from wavenet.augment import RecordingChain
from wavenet.data import ClipSet, prepare

RATE = 16000


def encoded(audio: np.ndarray, copies: int) -> torch.Tensor:
    return torch.from_numpy(np.tile(mulaw.encode(audio), (copies, 1)))


def test_without_augmentation_the_crops_pass_unchanged_minus_the_run_up():
    chain = RecordingChain(RATE, probability=0.0)
    crops = torch.randint(0, 256, (3, chain.head + 500), dtype=torch.uint8)
    assert torch.equal(chain.apply(crops, torch.Generator().manual_seed(0)), crops[:, chain.head:])


def test_chains_are_drawn_from_the_generator_so_a_resumed_run_repeats_them():
    chain = RecordingChain(RATE, probability=1.0)
    crops = torch.randint(100, 156, (4, chain.head + 2000), dtype=torch.uint8)
    first = chain.apply(crops, torch.Generator().manual_seed(7))
    assert torch.equal(first, chain.apply(crops, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, chain.apply(crops, torch.Generator().manual_seed(8)))


def test_a_click_rings_on_in_a_room_and_silence_gains_some_noise():
    chain = RecordingChain(RATE, probability=1.0)
    click = np.zeros(chain.head + RATE)
    click[chain.head + 100] = 0.5
    out = mulaw.decode(chain.apply(encoded(click, 32), torch.Generator().manual_seed(1)).numpy())
    tail = np.abs(out[:, 100 + int(0.05 * RATE): 100 + int(0.2 * RATE)]).max(axis=1)
    assert (tail > 0.002).sum() >= 10  # rooms (70 % of chains) ring on 50–200 ms after the click
    assert np.abs(out).max() <= 0.98 + 0.05  # the level change never clips (one μ-law step of slack)
    silence = mulaw.decode(chain.apply(encoded(np.zeros(chain.head + RATE), 32),
                                       torch.Generator().manual_seed(2)).numpy())
    noisy = silence.std(axis=1) > 1e-4
    assert 6 <= noisy.sum() <= 26  # about half the chains add noise, quiet (45–70 dB below full scale)
    assert silence[noisy].std(axis=1).max() < 10 ** (-40 / 20)


def test_augmented_real_piano_stays_the_same_music_with_a_changed_colour(tmp_path, piano_clip):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "clip.wav").write_bytes(piano_clip.read_bytes())
    prepare(tmp_path / "src", tmp_path / "data", RATE, 3.0, 0.0, progress=False)
    chain = RecordingChain(RATE, probability=1.0)
    crops = ClipSet.load(tmp_path / "data", "train").random_crops(8, chain.head + RATE, torch.Generator().manual_seed(3))
    dry = mulaw.decode(crops[:, chain.head:].numpy())
    wet = mulaw.decode(chain.apply(crops, torch.Generator().manual_seed(3)).numpy())
    correlation = [np.corrcoef(d, w)[0, 1] for d, w in zip(dry, wet)]
    assert min(correlation) > 0.3 and np.mean(correlation) < 0.999  # the same notes, not the same signal
