"""Bad input: the only model needs constructor arguments and none are configured."""

from torch import nn


class Configurable(nn.Module):
    def __init__(self, width, depth):
        super().__init__()
        self.blocks = nn.Sequential(*[nn.Conv2d(width, width, 3, padding=1) for _ in range(depth)])

    def forward(self, x):
        return self.blocks(x)
