"""Recording-chain augmentation: make dry training renders sound like real recordings.

Every corpus clip is a dry, noiseless render from piano samples, while what users continue is
a real recording: a room, a microphone's colour, a band limit, hiss, another level. A model
that never heard those scores real recordings worse than renders (session 3: 3.68 against
2.46 bits/sample) and drifts when continuing them. So, per training crop and with a given
probability, this draws a random recording chain and runs the crop through it:

- an equaliser: a smooth random curve (±6 dB at five log-spaced anchors), sometimes with a
  low-pass roll-off (cut-off 3.5–7.5 kHz, 12–36 dB/octave), as old recordings have;
- a room: an exponentially decaying noise tail (RT60 0.2–1.0 s, 5–30 ms pre-delay, 0–15 dB
  direct-to-reverberant ratio) behind the direct sound;
- noise: white to pink, 45–70 dB below full scale;
- a level change of ±6 dB, kept below clipping.

Reverberation needs the audio before the crop: the trainer draws `head` extra samples in
front of each crop, and `apply` drops them after the room has rung in.
All randomness comes from the trainer's generator, so a resumed run draws what it would have: the
per-crop settings directly, the bulk noise from a generator on the crops' device seeded by it (so
on a GPU the work stays there).
"""
from __future__ import annotations

import math

import torch

from wavenet import mulaw

AUGMENTATIONS = ("none", "recording")

EQ_ANCHORS_HZ = (60.0, 250.0, 1000.0, 3000.0, 6000.0)
EQ_RANGE_DB = 6.0
LOWPASS_PROBABILITY = 0.5
LOWPASS_CUTOFF_HZ = (3500.0, 7500.0)
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
        """μ-law crops uint8 [batch, head + length] -> uint8 [batch, length], some through a chain."""
        batch, width = crops.shape
        chosen = (torch.rand(batch, generator=generator) < self.probability).to(crops.device)
        out = crops[:, self.head:].clone()
        count = int(chosen.sum())
        if count == 0:
            return out
        device = crops.device
        bulk = torch.Generator(device).manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
        size = 1 << math.ceil(math.log2(width + self.head))
        response = self._equaliser(count, size, generator, device) * self._room(count, size, generator, bulk, device)
        audio = mulaw.decode_tensor(crops[chosen])
        shaped = torch.fft.irfft(torch.fft.rfft(audio, size) * response, size)[:, self.head:width]
        shaped = shaped + self._noise(count, width - self.head, generator, bulk, device)
        shaped = shaped * (10 ** (_uniform(count, (-GAIN_DB, GAIN_DB), generator) / 20)).to(device)[:, None]
        peak = shaped.abs().amax(dim=1, keepdim=True)
        shaped = torch.where(peak > PEAK_LIMIT, shaped * PEAK_LIMIT / peak, shaped)
        out[chosen] = mulaw.encode_tensor(shaped)
        return out

    def _frequencies(self, size: int, device: torch.device) -> torch.Tensor:
        return torch.fft.rfftfreq(size, d=1.0 / self.sample_rate, device=device)

    def _equaliser(self, count: int, size: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """Gains [count, bins]: a random curve through log-spaced anchors, some with a low-pass."""
        nyquist = self.sample_rate / 2
        anchors = torch.log2(torch.tensor([f for f in EQ_ANCHORS_HZ if f < nyquist], device=device))
        anchor_db = _uniform(count * len(anchors), (-EQ_RANGE_DB, EQ_RANGE_DB), generator).view(count, -1).to(device)
        lowpass = (torch.rand(count, generator=generator) < LOWPASS_PROBABILITY).to(device)
        cutoff = _uniform(count, LOWPASS_CUTOFF_HZ, generator).clamp(max=0.95 * nyquist).to(device)
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
        return 10 ** (gain_db / 20)

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
