import sys
from pathlib import Path

# The projection and the vendored SDK, without installing anything.
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "vendor")]
