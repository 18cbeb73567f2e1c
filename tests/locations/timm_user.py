"""The user's own model built with an installed package's layer helper."""

import torch.nn as nn
from timm.layers import create_conv2d


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3)
        self.dw = create_conv2d(32, 32, 3, depthwise=True)

    def forward(self, x):
        return self.dw(self.stem(x))
