"""Bad input: the constructor raises."""

from torch import nn


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)
        raise RuntimeError("checkpoint path not configured")

    def forward(self, x):
        return self.conv(x)
