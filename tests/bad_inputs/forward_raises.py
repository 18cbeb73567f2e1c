"""Bad input: forward() raises."""

from torch import nn


class Unfinished(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)

    def forward(self, x):
        raise NotImplementedError("forward is not written yet")
