"""A layer library: a Conv2d subclass with its own forward, as "static same padding" convs are."""

import torch.nn as nn
import torch.nn.functional as F


class Conv2dSame(nn.Conv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, (1, 1), self.dilation, self.groups)
