"""Bad input: calls sys.exit() while being imported."""

import sys

sys.exit("this file is not meant to be imported")
