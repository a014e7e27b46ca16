"""Suite-wide settings: no test may pull an image (testcontainers' Ryuk would)."""

import os

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
