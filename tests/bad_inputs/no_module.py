"""Bad input: Python, but no nn.Module in it."""

SCALE = 2


def double(x):
    return SCALE * x
