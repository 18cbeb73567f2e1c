"""Bad input: of three models in one file, the middle one crashes the interpreter in forward()."""

import ctypes

from torch import nn


class First(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)

    def forward(self, x):
        return self.conv(x)


class Second(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)

    def forward(self, x):
        ctypes.string_at(0)
        return self.conv(x)


class Third(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3)

    def forward(self, x):
        return self.conv(x)
