"""A straightforward re-implementation of the reference paper's network, for comparison only.

It mirrors the reference code's structure: a one-hot input through a 1×1 convolution,
separate filter and gate convolutions with symmetric padding sliced back to the input
length, and every output position in the loss. Used by the import test (same logits after
conversion) and the training benchmark (the baseline our model is measured against).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ReferenceWaveNet(nn.Module):
    def __init__(self, layers: int, stacks: int, residual: int, dilation: int, skip: int, classes: int = 256):
        super().__init__()
        self.dilations = [2**i for _ in range(stacks) for i in range(layers)]
        self.classes = classes
        self.causal = nn.Conv1d(classes, residual, 1)
        self.filters = nn.ModuleList(nn.Conv1d(residual, dilation, 2, dilation=d, padding=d) for d in self.dilations)
        self.gates = nn.ModuleList(nn.Conv1d(residual, dilation, 2, dilation=d, padding=d) for d in self.dilations)
        self.residuals = nn.ModuleList(nn.Conv1d(dilation, residual, 1) for _ in self.dilations)
        self.skips = nn.ModuleList(nn.Conv1d(dilation, skip, 1) for _ in self.dilations)
        self.end1 = nn.Conv1d(skip, skip, 1)
        self.end2 = nn.Conv1d(skip, classes, 1)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        """indices [B, T] -> logits [B, classes, T]."""
        x = self.causal(F.one_hot(indices, self.classes).float().transpose(1, 2))
        length = x.shape[2]
        total = 0
        for f, g, r, s in zip(self.filters, self.gates, self.residuals, self.skips):
            z = torch.tanh(f(x)[:, :, :length]) * torch.sigmoid(g(x)[:, :, :length])
            x = x + r(z)
            total = total + s(z)
        return self.end2(F.relu(self.end1(F.relu(total))))
