"""A small MobileNetV2-style network, written the way a user would, to try cnnlint on.

    cnnlint examples/mobilenet_v2_like.py --target t4

It has the things deployment guides warn about: depthwise convs (slow on GPUs and NPUs) and a few
channel counts that are not multiples of 16 (padded by most accelerators).
"""

import torch
from torch import nn


class ConvBNReLU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int):
        super().__init__()
        hidden = in_ch * expand
        self.use_residual = stride == 1 and in_ch == out_ch
        self.expand = ConvBNReLU(in_ch, hidden, kernel=1)
        self.depthwise = ConvBNReLU(hidden, hidden, stride=stride, groups=hidden)
        self.project = nn.Conv2d(hidden, out_ch, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project_bn(self.project(self.depthwise(self.expand(x))))
        return x + y if self.use_residual else y


class MobileNetV2Like(nn.Module):
    # (expansion, output channels, repeats, stride) per stage
    STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 40, 2, 2), (6, 64, 3, 2), (6, 96, 2, 1)]

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers = [ConvBNReLU(3, 32, stride=2)]
        in_ch = 32
        for expand, out_ch, repeats, stride in self.STAGES:
            for i in range(repeats):
                layers.append(InvertedResidual(in_ch, out_ch, stride if i == 0 else 1, expand))
                in_ch = out_ch
        layers.append(ConvBNReLU(in_ch, 1280, kernel=1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x))
        return self.classifier(torch.flatten(x, 1))
