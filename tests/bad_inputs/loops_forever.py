"""Bad input: forward() never returns."""

from torch import nn


class Spins(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)

    def forward(self, x):
        while True:
            x = x + 0
