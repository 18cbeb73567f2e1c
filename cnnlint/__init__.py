"""cnnlint: lint a PyTorch CNN's architecture against the hardware it will run on.

Pipeline (each stage imports only the ones before it):
load -> trace -> graph -> cost -> check -> report
"""

__version__ = "0.1.0"
