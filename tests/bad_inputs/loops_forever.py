"""Bad input: forward() never returns."""

from torch import nn


class Spins(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)

    def forward(self, x):
        # One line, so that wherever the loop is stopped, it is stopped on this line.
        while True: x = x + 0  # noqa: E701
