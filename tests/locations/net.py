"""Locations: a Conv2d subclass with its own forward, functional ops mid-line, a shared block."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from same_conv import Conv2dSame


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dw = Conv2dSame(c, c, 3, groups=c)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = Conv2dSame(3, 32, 3)
        self.block = Block(32)
        self.w = nn.Parameter(torch.ones(1, 32, 1, 1))

    def forward(self, x):
        y = F.relu(self.stem(x))
        out = self.block.dw(y) * self.w
        out += y
        return out
