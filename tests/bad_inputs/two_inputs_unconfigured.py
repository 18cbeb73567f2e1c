"""Bad input: two inputs, and no shape configured for the second."""

from torch import nn


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.left = nn.Conv2d(3, 16, 3, padding=1)
        self.right = nn.Conv2d(3, 16, 3, padding=1)

    def forward(self, left, right):
        return self.left(left) + self.right(right)
