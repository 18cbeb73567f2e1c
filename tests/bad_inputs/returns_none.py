"""Bad input: forward() computes but returns None."""

from torch import nn


class ForgetsToReturn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)

    def forward(self, x):
        self.conv(x)
