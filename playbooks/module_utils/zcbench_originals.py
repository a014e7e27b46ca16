"""The store of original values that provisioning changed, so that --revert can restore them.

Shared by the zcbench modules (ansible.module_utils.zcbench_originals): one JSON object per
store file under /var/lib/zcbench/originals, removed once nothing is left to restore.
"""

from __future__ import annotations

import json
import os


def load_originals(store: str) -> dict:
    try:
        with open(store) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return {}


def save_originals(store: str, originals: dict) -> None:
    if not originals:
        if os.path.exists(store):
            os.remove(store)
        return
    os.makedirs(os.path.dirname(store), mode=0o700, exist_ok=True)
    with open(store + ".tmp", "w") as handle:
        json.dump(originals, handle, indent=1, sort_keys=True)
    os.replace(store + ".tmp", store)
