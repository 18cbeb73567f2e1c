"""Minimal models for what a newcomer meets on the command line."""

import torch.nn as nn


class Deep(nn.Module):
    """Twelve depthwise convs built on one line: findings sort features.2 before features.10."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.features = nn.Sequential(*[nn.Conv2d(32, 32, 3, padding=1, groups=32) for _ in range(12)])

    def forward(self, x):
        return self.features(self.stem(x))


class WithAux(nn.Module):
    """An aux head the inference forward never calls."""

    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(3, 16, 3)
        self.aux = nn.Sequential(nn.Conv2d(16, 64, 3), nn.Conv2d(64, 10, 1))

    def forward(self, x):
        return self.body(x)


class Gate(nn.Module):
    def forward(self, x):
        if x.shape[1] > 8:  # control flow on a shape: this submodule is retraced alone
            return x * 2
        return x


class NeedsLeafRetrace(nn.Module):
    """Its trace takes a fallback, which the report notes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)
        self.gate = Gate()

    def forward(self, x):
        return self.gate(self.conv(x))


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        raise ValueError("cannot build")
