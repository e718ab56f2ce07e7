"""Recording-chain augmentation: make dry training renders sound like real recordings.

Every corpus clip is a dry, noiseless render from piano samples, while what users continue is
a real recording: a room, a microphone's colour, a band limit, hiss, another level. A model
trained only on renders scores real recordings worse than renders (session 3: 3.68 against
2.46 bits/sample), and faint noise alone costs it several bits per sample. So, per training
crop and with a given probability, this draws a random recording chain and runs the crop
through it:

- an equaliser: a smooth random curve (±6 dB at anchors from 60 Hz to 6 kHz), sometimes with a
  low-pass roll-off (cut-off 44–94 % of Nyquist, 12–36 dB/octave), as old recordings have;
  minimum-phase, so like an analogue filter it never reacts before the sound;
- a room: an exponentially decaying noise tail (RT60 0.2–1.0 s, 5–30 ms pre-delay, 0–15 dB
  direct-to-reverberant ratio) behind the direct sound;
- noise: white to pink, 45–70 dB below full scale;
- a level change of ±6 dB on all of it (so the noise ends 39–76 dB down), kept below clipping.

The whole chain is causal. Reverberation needs the audio before the crop: the trainer passes
`head` samples of history in front of each crop (silence before its recording's start), and the
chain drops them after the room has rung in.
Per-crop settings come from the trainer's generator, the bulk noise from a generator on the
crops' device seeded by it, so a resumed run on the same kind of device draws what it would have.
"""
from __future__ import annotations

import math

import torch

from wavenet import mulaw

AUGMENTATIONS = ("none", "recording")

EQ_ANCHORS_HZ = (60.0, 250.0, 1000.0, 3000.0, 6000.0)
EQ_RANGE_DB = 6.0
LOWPASS_PROBABILITY = 0.5
LOWPASS_CUTOFF_NYQUIST = (0.44, 0.94)  # 3.5–7.5 kHz at 16 kHz
LOWPASS_SLOPE_DB_PER_OCTAVE = (12.0, 36.0)
ROOM_PROBABILITY = 0.7
RT60_SECONDS = (0.2, 1.0)
PREDELAY_SECONDS = (0.005, 0.03)
DIRECT_TO_REVERB_DB = (0.0, 15.0)
NOISE_PROBABILITY = 0.5
NOISE_DBFS = (-70.0, -45.0)
GAIN_DB = 6.0
PEAK_LIMIT = 0.98


def _uniform(count: int, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand(count, generator=generator)


class RecordingChain:
    """Random recording chains for training crops (see the module docstring)."""

    def __init__(self, sample_rate: int, probability: float = 0.5):
        if not 0.0 <= probability <= 1.0:
            raise ValueError("the augmentation probability must be in [0, 1]")
        self.sample_rate = sample_rate
        self.probability = probability
        self.head = int(RT60_SECONDS[1] * sample_rate)  # the longest room response, in samples

    def apply(self, crops: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """μ-law crops uint8 [batch, head + length] -> uint8 [batch, length]: each, with the
        chain's probability, through a random recording chain; the others as they were."""
        chosen = (torch.rand(crops.shape[0], generator=generator) < self.probability).to(crops.device)
        out = crops[:, self.head:].clone()
        if chosen.any():
            out[chosen] = mulaw.encode_tensor(self.record(mulaw.decode_tensor(crops[chosen]), generator))
        return out

    def record(self, audio: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Float audio [count, head + length] -> [count, length], each row through its own random
        chain; the first `head` samples only ring the room in."""
        count, width = audio.shape
        device = audio.device
        bulk = torch.Generator(device).manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        size = 1 << math.ceil(math.log2(width + self.head))  # room for the linear convolution
        response = self._equaliser(count, size, generator, device) * self._room(count, size, generator, bulk, device)
        shaped = torch.fft.irfft(torch.fft.rfft(audio, size) * response, size)[:, self.head:width]
        shaped = shaped + self._noise(count, width - self.head, generator, bulk, device)
        shaped = shaped * (10 ** (_uniform(count, (-GAIN_DB, GAIN_DB), generator) / 20)).to(device)[:, None]
        peak = shaped.abs().amax(dim=1, keepdim=True)
        return torch.where(peak > PEAK_LIMIT, shaped * PEAK_LIMIT / peak, shaped)

    def _frequencies(self, size: int, device: torch.device) -> torch.Tensor:
        return torch.fft.rfftfreq(size, d=1.0 / self.sample_rate, device=device)

    def _equaliser(self, count: int, size: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """Minimum-phase responses [count, bins]: a random curve through the anchors, some with a low-pass."""
        nyquist = self.sample_rate / 2
        anchors = torch.log2(torch.tensor([f for f in EQ_ANCHORS_HZ if f < nyquist], device=device))
        anchor_db = _uniform(count * len(anchors), (-EQ_RANGE_DB, EQ_RANGE_DB), generator).view(count, -1).to(device)
        lowpass = (torch.rand(count, generator=generator) < LOWPASS_PROBABILITY).to(device)
        cutoff = (_uniform(count, LOWPASS_CUTOFF_NYQUIST, generator) * nyquist).to(device)
        slope = _uniform(count, LOWPASS_SLOPE_DB_PER_OCTAVE, generator).to(device)
        frequencies = self._frequencies(size, device)
        # Piecewise-linear in octaves between anchors, flat beyond the outer ones.
        octaves = torch.log2(frequencies.clamp(min=2 ** anchors[0].item())).clamp(max=anchors[-1].item())
        position = torch.bucketize(octaves, anchors).clamp(1, len(anchors) - 1)
        left, right = anchors[position - 1], anchors[position]
        weight = ((octaves - left) / (right - left)).clamp(0, 1)
        gain_db = anchor_db[:, position - 1] * (1 - weight) + anchor_db[:, position] * weight
        above = torch.log2(frequencies[None, :] / cutoff[:, None]).clamp(min=0)
        gain_db = gain_db - torch.where(lowpass[:, None], slope[:, None] * above, torch.zeros_like(above))
        # Minimum phase from the magnitude alone: fold the real cepstrum of log|H| onto positive quefrencies.
        cepstrum = torch.fft.irfft(gain_db * (math.log(10) / 20), size)
        fold = torch.zeros(size, device=device)
        fold[0], fold[1 : size // 2], fold[size // 2] = 1.0, 2.0, 1.0
        return torch.exp(torch.fft.rfft(cepstrum * fold, size))

    def _room(self, count: int, size: int, generator: torch.Generator, bulk: torch.Generator,
              device: torch.device) -> torch.Tensor:
        """Room responses [count, bins]: the direct sound plus, for some crops, a decaying tail."""
        rooms = (torch.rand(count, generator=generator) < ROOM_PROBABILITY).to(device)
        rt60 = _uniform(count, RT60_SECONDS, generator).to(device)
        predelay = (_uniform(count, PREDELAY_SECONDS, generator) * self.sample_rate).round().to(device)
        ratio_db = _uniform(count, DIRECT_TO_REVERB_DB, generator).to(device)
        delayed = torch.arange(self.head, device=device)[None, :] - predelay[:, None]
        # RT60: the tail's amplitude falls by 60 dB (a factor of 1000) in rt60 seconds.
        envelope = torch.exp(-math.log(1000) * delayed.clamp(min=0) / (rt60[:, None] * self.sample_rate))
        tail = torch.randn(count, self.head, generator=bulk, device=device) * envelope * (delayed > 0)
        energy = tail.square().sum(dim=1).clamp(min=1e-12)
        tail = tail * (torch.sqrt(10 ** (-ratio_db / 10) / energy) * rooms)[:, None]
        tail[:, 0] = 1.0  # the direct sound
        return torch.fft.rfft(tail, size)

    def _noise(self, count: int, length: int, generator: torch.Generator, bulk: torch.Generator,
               device: torch.device) -> torch.Tensor:
        """Background noise [count, length]: white to pink, at a random level (silence for some crops)."""
        present = torch.rand(count, generator=generator) < NOISE_PROBABILITY
        level = 10 ** (_uniform(count, NOISE_DBFS, generator) / 20) * present
        colour = torch.rand(count, generator=generator).to(device)  # 0 white .. 1 pink
        white = torch.randn(count, length, generator=bulk, device=device)
        frequencies = torch.fft.rfftfreq(length, d=1.0 / self.sample_rate, device=device).clamp(min=20.0)
        noise = torch.fft.irfft(torch.fft.rfft(white) * frequencies[None, :] ** (-colour[:, None] / 2), length)
        noise = noise / noise.square().mean(dim=1, keepdim=True).sqrt().clamp(min=1e-12)
        return noise * level.to(device)[:, None]


def noisy_history(crops: torch.Tensor, max_sigma: float, generator: torch.Generator) -> torch.Tensor:
    """The history the model sees when it must learn to continue its own samples, uint8 like `crops`.

    A model sampling at temperature 1 feeds itself values a class or two off any clean signal,
    while a model trained only on noiseless renders never saw such a history: shifting inputs by
    a Gaussian of 1 class (targets clean) took piano-small from 2.6 to 5.3 bits/sample, 2 classes
    to 9.1, yet it stayed as confident as before. So each crop gets Gaussian noise in μ-law
    classes with its own standard deviation, uniform in [0, max_sigma]; the targets stay clean.
    Too much teaches the model to shrink what it hears: with up to 2 classes its takes faded to
    silence (README, session 5).
    """
    if max_sigma <= 0:
        return crops
    bulk = torch.Generator(crops.device).manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    return shifted_by_noise(crops, torch.rand(crops.shape[0], generator=generator) * max_sigma, bulk)


def shifted_by_noise(indices: torch.Tensor, sigma: torch.Tensor, bulk: torch.Generator) -> torch.Tensor:
    """μ-law indices [rows, samples] plus Gaussian noise of `sigma[row]` classes (drawn from `bulk`, a
    generator on the indices' device), rounded and kept in range, in the indices' dtype."""
    noise = torch.randn(indices.shape, generator=bulk, device=indices.device) * sigma.to(indices.device)[:, None]
    return (indices.float() + noise).round().clamp(0, mulaw.CLASSES - 1).to(indices.dtype)
