"""Where zcbench's own files are: the native server's sources, the playbooks, the image contexts
and the load generator scripts (the project's data), and where it writes by default.

In a checkout they sit beside the package (<root>/server, <root>/playbooks, ...). An installed
zcbench (`pip install .`) carries them as package data under zcbench/_data, and writes its
results under the current directory instead of the package.
"""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
CHECKOUT = PACKAGE.parent
#: The data directories every source path is resolved against.
DATA_DIRS = ("server", "playbooks", "images", "loadgen")


def _is_checkout(root: Path) -> bool:
    return (root / "server" / "Makefile").is_file() and (root / "pyproject.toml").is_file()


#: The root the project's data lives under: the checkout, or the installed package's data.
ROOT = CHECKOUT if _is_checkout(CHECKOUT) else PACKAGE / "_data"
#: True when running from a checkout (git state, the lock file and the tests are there).
IN_CHECKOUT = ROOT == CHECKOUT
#: Default results root and scratch space: the checkout's, else the current directory's.
WORK = CHECKOUT if IN_CHECKOUT else Path.cwd()
