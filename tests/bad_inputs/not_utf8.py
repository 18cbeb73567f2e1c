"""Bad input: saved as Latin-1, not UTF-8."""

NAME = "café"
