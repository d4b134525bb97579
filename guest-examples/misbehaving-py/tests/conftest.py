import sys
from pathlib import Path

# The example and the SDK from this repository, without installing them.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[2] / "sdk-python")]

# The SDK before any projection module: its clock and randomness guards are
# then what a projection takes at import (`from random import random`).
import projector_sdk.testing  # noqa: E402,F401
