import sys
from pathlib import Path

# The projection and the vendored SDK, without installing anything.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "vendor")]

# The SDK before any projection module: its clock and randomness guards are
# then what a projection takes at import (`from random import random`).
import projector_sdk.testing  # noqa: E402,F401
