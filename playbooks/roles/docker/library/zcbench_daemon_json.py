#!/usr/bin/python
"""Merge zcbench's settings into the Docker engine's daemon.json, keeping everything else in it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: zcbench_daemon_json
short_description: Merge settings into daemon.json without dropping the host's own
description:
  - Reads O(path) (a missing or empty file is C({})), sets each key of O(options) and each
    ulimit of O(default_ulimits) under C(default-ulimits), and writes the file only when that
    changes its meaning. Every other key (data-root, storage-driver, log driver, registry
    mirrors, other ulimits) stays as it was; an unchanged file keeps its bytes and formatting.
  - A file that is not a JSON object fails with one line; nothing is written then.
  - The original is recorded and restored by zcbench_original, not here.
options:
  path: {description: daemon.json., type: path, default: /etc/docker/daemon.json}
  default_ulimits: {description: Ulimit name to the soft and hard value (-1 is unlimited)., type: dict, default: {}}
  options: {description: Top-level daemon.json keys to set., type: dict, default: {}}
"""

EXAMPLES = r"""
- name: Container memlock and nofile defaults
  zcbench_daemon_json:
    default_ulimits: {memlock: 8388608, nofile: 1048576}
"""

RETURN = r"""
settings: {description: The whole merged daemon.json., type: dict, returned: success}
"""

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule


class DaemonJsonError(ValueError):
    pass


def read_settings(path: str) -> tuple[dict, str | None]:
    """The parsed file and its text (None when it does not exist)."""
    try:
        with open(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}, None
    if not text.strip():
        return {}, text
    try:
        settings = json.loads(text)
    except ValueError as exc:
        raise DaemonJsonError(f"{path} is not valid JSON ({exc}); fix or remove it first") from None
    if not isinstance(settings, dict):
        raise DaemonJsonError(f"{path} holds a JSON {type(settings).__name__}, not an object")
    return settings, text


def merged(settings: dict, default_ulimits: dict, options: dict) -> dict:
    """settings with options set and the ulimits set inside default-ulimits (others kept)."""
    result = json.loads(json.dumps(settings))  # a deep copy
    result.update(options)
    if default_ulimits:
        ulimits = dict(result.get("default-ulimits") or {})
        for name, value in default_ulimits.items():
            # dockerd rejects numbers given as strings
            ulimits[name] = {"Name": name, "Soft": int(value), "Hard": int(value)}
        result["default-ulimits"] = ulimits
    return result


def write_atomically(path: str, text: str, mode: int) -> None:
    directory = os.path.dirname(path) or "."
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".daemon.json.")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/etc/docker/daemon.json"},
            "default_ulimits": {"type": "dict", "default": {}},
            "options": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        current, text = read_settings(path)
    except DaemonJsonError as exc:
        module.fail_json(msg=str(exc))
    wanted = merged(current, module.params["default_ulimits"], module.params["options"])
    changed = text is None or wanted != current
    new_text = json.dumps(wanted, indent=2, sort_keys=True) + "\n"
    if changed and not module.check_mode:
        mode = os.stat(path).st_mode & 0o7777 if text is not None else 0o644
        write_atomically(path, new_text, mode)
    diff = {"before": text or "", "after": new_text if changed else (text or ""),
            "before_header": path, "after_header": path}
    module.exit_json(changed=changed, settings=wanted, diff=diff)


if __name__ == "__main__":
    main()
