"""Bad input: the model's constructor crashes the interpreter (reads address 0)."""

import ctypes

from torch import nn


class Crashes(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)
        ctypes.string_at(0)

    def forward(self, x):
        return self.conv(x)
