import sys
from pathlib import Path

# The example and the SDK from this repository, without installing them.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[2] / "sdk-python")]
