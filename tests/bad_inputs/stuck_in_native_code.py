"""Bad input: forward() hangs where no signal reaches it, as native code can (SIGALRM blocked)."""

import signal

from torch import nn


class Stuck(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3)

    def forward(self, x):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        while True:
            pass
