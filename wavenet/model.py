"""The WaveNet network: a config dataclass with the paper's presets and one nn.Module.

Shapes: indices [B, T] (μ-law classes) -> logits [B, 256, T'], where logits[:, :, t]
predicts the sample after input t.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from wavenet.mulaw import CLASSES


@dataclass(frozen=True)
class WaveNetConfig:
    layers: int = 10
    stacks: int = 5
    residual_channels: int = 32
    dilation_channels: int = 32
    skip_channels: int = 256
    classes: int = CLASSES
    sample_rate: int = 16000

    @property
    def dilations(self) -> list[int]:
        return [2**i for _ in range(self.stacks) for i in range(self.layers)]

    @property
    def receptive_field(self) -> int:
        """Receptive field as the paper counts it: stacks * (2**layers - 1) samples."""
        return self.stacks * (2**self.layers - 1)

    @property
    def receptive_field_ms(self) -> float:
        return 1000.0 * self.receptive_field / self.sample_rate

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "WaveNetConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def preset(cls, name: str, **widths) -> "WaveNetConfig":
        """`small` 10×5, `medium` 13×5, `large` 14×4 (layers × stacks), as in the paper."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        layers, stacks = PRESETS[name]
        return cls(layers=layers, stacks=stacks, **{k: v for k, v in widths.items() if v is not None})


PRESETS: dict[str, tuple[int, int]] = {"small": (10, 5), "medium": (13, 5), "large": (14, 4)}
PAPER_WIDTHS = {"residual_channels": 64, "dilation_channels": 64, "skip_channels": 1024}


class ResidualLayer(nn.Module):
    """Dilated causal conv (kernel 2) -> tanh·sigmoid gate -> 1×1 residual. Its 1×1 skip conv is
    applied by WaveNet.skips, to all layers at once."""

    def __init__(self, config: WaveNetConfig, dilation: int, last: bool = False):
        super().__init__()
        self.dilation = dilation
        self.dilated = nn.Conv1d(config.residual_channels, 2 * config.dilation_channels, 2, dilation=dilation)
        # The last layer's residual output would feed nothing, so it has no residual conv.
        self.residual = None if last else nn.Conv1d(config.dilation_channels, config.residual_channels, 1)
        self.skip = nn.Conv1d(config.dilation_channels, config.skip_channels, 1)

    def forward(self, x: torch.Tensor, causal_pad: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, R, T] -> (next x [B, R, T or T-d], gated activations [B, D, same])."""
        if causal_pad:
            x = F.pad(x, (self.dilation, 0))
        filt, gate = self.dilated(x).chunk(2, dim=1)
        z = torch.tanh(filt) * torch.sigmoid(gate)
        x = x[:, :, self.dilation :]
        return (x if self.residual is None else x + self.residual(z)), z


class WaveNet(nn.Module):
    def __init__(self, config: WaveNetConfig):
        super().__init__()
        self.config = config
        # An embedding is the 1×1 convolution over the one-hot input, without building the one-hot.
        self.embed = nn.Embedding(config.classes, config.residual_channels)
        count = len(config.dilations)
        self.layers = nn.ModuleList(ResidualLayer(config, d, last=i == count - 1) for i, d in enumerate(config.dilations))
        self.end1 = nn.Conv1d(config.skip_channels, config.skip_channels, 1)
        self.end2 = nn.Conv1d(config.skip_channels, config.classes, 1)

    def forward(self, indices: torch.Tensor, causal_pad: bool = True) -> torch.Tensor:
        """indices [B, T] -> logits [B, classes, T] (causal_pad) or [B, classes, T - receptive_field].

        Without padding only outputs that see a full receptive field are computed; training
        uses that to skip work on outputs it would discard.
        """
        x = self.embed(indices.long()).transpose(1, 2)
        gated = []
        for layer in self.layers:
            x, z = layer(x, causal_pad)
            gated.append(z)
        return self.head(self.skips(gated))

    def skips(self, gated: list[torch.Tensor]) -> torch.Tensor:
        """Every layer's 1×1 skip conv, summed over the positions the output keeps, as one
        convolution over the stacked gated activations [B, layers·D, T]: one large product (which
        accumulates in float32 under bf16 autocast too) instead of a small one and a full-size
        addition per layer; training on the CPU ran 1.2-1.3× faster."""
        length = gated[-1].shape[2]
        stacked = torch.cat([z[:, :, -length:] for z in gated], dim=1)
        weight = torch.cat([layer.skip.weight for layer in self.layers], dim=1)
        bias = torch.stack([layer.skip.bias for layer in self.layers]).sum(0)
        return F.conv1d(stacked, weight, bias)

    def head(self, skips: torch.Tensor) -> torch.Tensor:
        """Summed skips [B, S, T] -> logits [B, classes, T]."""
        return self.end2(F.relu(self.end1(F.relu(skips))))

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


@torch.no_grad()
def grow(source: WaveNet, target_config: WaveNetConfig) -> WaveNet:
    """A deeper network that starts out computing (nearly) what `source` computes.

    Each target stack takes the layers of the matching source stack; the extra, longer-dilation
    layers start with zero residual and skip outputs, so they add nothing until trained. Source
    stacks beyond the target's count are dropped (then the start is only close, not equal).
    Widths must match.
    """
    s, t = source.config, target_config
    if (s.residual_channels, s.dilation_channels, s.skip_channels, s.classes) != (
            t.residual_channels, t.dilation_channels, t.skip_channels, t.classes) or t.layers < s.layers:
        raise ValueError("grow needs equal widths and at least as many layers per stack")
    target = WaveNet(t)
    target.embed.load_state_dict(source.embed.state_dict())
    target.end1.load_state_dict(source.end1.state_dict())
    target.end2.load_state_dict(source.end2.state_dict())
    for stack in range(t.stacks):
        for layer in range(t.layers):
            new = target.layers[stack * t.layers + layer]
            if stack < s.stacks and layer < s.layers:
                old = source.layers[stack * s.layers + layer]
                new.dilated.load_state_dict(old.dilated.state_dict())
                new.skip.load_state_dict(old.skip.state_dict())
                if new.residual is not None:
                    if old.residual is not None:
                        new.residual.load_state_dict(old.residual.state_dict())
                    else:
                        new.residual.weight.zero_()
                        new.residual.bias.zero_()
            else:
                for conv in (new.skip, new.residual):
                    if conv is not None:
                        conv.weight.zero_()
                        conv.bias.zero_()
    return target
