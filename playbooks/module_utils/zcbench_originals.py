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


def set_knob(key: str, path: str, wanted: str, *, check_mode: bool, normalize, originals: dict,
             changed: dict, refused: dict) -> None:
    """Write `wanted` to one kernel knob file (a sysctl, an IRQ's affinity), check that the
    kernel kept it, and record the value found first under `key` so --revert can put it back.

    Fills changed[key] = [before, after], or refused[key] with why; nothing when it already
    holds `wanted`. In check mode nothing is written: changed says what would be."""
    try:
        with open(path) as handle:
            before = normalize(handle.read())
    except OSError as exc:
        refused[key] = f"cannot read {path}: {exc.strerror}"
        return
    if before == wanted:
        return
    if check_mode:
        changed[key] = [before, wanted]
        return
    try:
        with open(path, "w") as handle:
            handle.write(wanted + "\n")
        with open(path) as handle:
            after = normalize(handle.read())
    except OSError as exc:
        refused[key] = f"the kernel refused {wanted!r} in {path}: {exc.strerror}"
        return
    if after != wanted:
        refused[key] = f"wrote {wanted!r}, kernel kept {after!r}"
        if after == before:
            return
    originals.setdefault(key, before)
    changed[key] = [before, after]
