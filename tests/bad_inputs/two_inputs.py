"""Not bad once configured: a model with two inputs; pyproject.toml here gives both shapes."""

import torch
from torch import nn


class ImageAndMask(nn.Module):
    def __init__(self):
        super().__init__()
        self.image = nn.Conv2d(3, 16, 3, padding=1)
        self.mask = nn.Conv2d(1, 16, 3, padding=1)

    def forward(self, image, mask):
        return torch.relu(self.image(image) + self.mask(mask))
