"""zcbench: does io_uring zero-copy send help my server on my host?"""

from pathlib import Path

__version__ = "0.1.0"

#: Repository root (the package lives in <root>/zcbench).
ROOT = Path(__file__).resolve().parent.parent
