#!/usr/bin/python
"""Record a file's original state before provisioning first changes it; restore it on revert."""

from __future__ import annotations

DOCUMENTATION = r"""
module: zcbench_original
short_description: Record or restore the original of a file that provisioning changes
description:
  - C(state=recorded) saves the file's content and mode (or the fact that it did not exist)
    under O(store), once; later runs never overwrite that record, so it stays the pre-provisioning
    original.
  - C(state=restored) puts the original back (or removes the file when it did not exist) and
    deletes the record. Without a record nothing happens.
options:
  path: {description: File to record or restore., type: path, required: true}
  state: {description: recorded or restored., type: str, default: recorded, choices: [recorded, restored]}
  store: {description: Directory of the records., type: path, default: /var/lib/zcbench/originals}
"""

EXAMPLES = r"""
- name: Record /etc/docker/daemon.json before it is written
  zcbench_original:
    path: /etc/docker/daemon.json
"""

RETURN = r"""
existed: {description: Whether the file existed before provisioning (from the record)., type: bool, returned: when a record exists}
"""

import json
import os
import shutil

from ansible.module_utils.basic import AnsibleModule


def record_paths(store: str, path: str) -> tuple[str, str]:
    """The record's metadata file and content copy; named after the path so records never clash."""
    key = path.strip("/").replace("/", "__")
    return os.path.join(store, key + ".json"), os.path.join(store, key + ".orig")


def record(module: AnsibleModule, path: str, store: str) -> dict:
    meta_path, copy_path = record_paths(store, path)
    if os.path.exists(meta_path):
        with open(meta_path) as meta:
            return {"changed": False, "existed": json.load(meta)["existed"]}
    existed = os.path.exists(path)
    if not module.check_mode:
        os.makedirs(store, mode=0o700, exist_ok=True)
        if existed:
            shutil.copy2(path, copy_path)
        meta = {"path": path, "existed": existed}
        if existed:
            meta["mode"] = os.stat(path).st_mode & 0o7777
        with open(meta_path + ".tmp", "w") as out:
            json.dump(meta, out)
        os.replace(meta_path + ".tmp", meta_path)
    return {"changed": True, "existed": existed}


def restore(module: AnsibleModule, path: str, store: str) -> dict:
    meta_path, copy_path = record_paths(store, path)
    if not os.path.exists(meta_path):
        return {"changed": False}
    with open(meta_path) as meta_file:
        meta = json.load(meta_file)
    if not module.check_mode:
        if meta["existed"]:
            shutil.copy2(copy_path, path)
            os.chmod(path, meta["mode"])
            os.remove(copy_path)
        elif os.path.exists(path):
            os.remove(path)
        os.remove(meta_path)
    return {"changed": True, "existed": meta["existed"]}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "default": "recorded", "choices": ["recorded", "restored"]},
            "store": {"type": "path", "default": "/var/lib/zcbench/originals"},
        },
        supports_check_mode=True,
    )
    action = record if module.params["state"] == "recorded" else restore
    module.exit_json(**action(module, module.params["path"], module.params["store"]))


if __name__ == "__main__":
    main()
