"""Bad input: calls os._exit() while being imported (kills the process, no exception)."""

import os

os._exit(3)
