#!/usr/bin/python
"""Apply ethtool features / coalesce / ring / channels settings, only the keys given."""

from __future__ import annotations

DOCUMENTATION = r"""
module: zcbench_ethtool
short_description: Set a NIC's ethtool settings revertibly, reporting what the device refuses
description:
  - Reads the interface's settings (C(ethtool -k/-c/-g/-l)), changes only the keys given whose
    value differs, and re-reads them to report what the device really has now.
  - A fixed feature, a key the device does not have, or a setting the driver rejects is reported
    in RV(unsupported), never fatal; an interface that does not exist is fatal.
  - The first change of each key records its previous value in O(store);
    C(state=restored) sets the recorded values back.
options:
  interface: {description: Network interface., type: str, required: true}
  features: {description: Feature name (as C(ethtool -k) prints it) to on/off., type: dict, default: {}}
  coalesce: {description: Coalesce parameter (C(ethtool -C) names, e.g. rx-usecs) to value., type: dict, default: {}}
  ring: {description: Ring parameter (rx, tx, rx-mini, rx-jumbo) to size., type: dict, default: {}}
  channels: {description: Channel count (rx, tx, other, combined) to count., type: dict, default: {}}
  state: {description: present or restored., type: str, default: present, choices: [present, restored]}
  store: {description: JSON file of the recorded originals., type: path, required: true}
  netns: {description: Network namespace to run ethtool in (tests)., type: str}
  ethtool:
    description:
      - The ethtool binary (a name looked up in PATH, or a path). Missing in check mode (a fresh
        host whose install step only pretended) is reported, not failed.
    type: str
    default: ethtool
"""

EXAMPLES = r"""
- name: Turn GRO off on eth0
  zcbench_ethtool:
    interface: eth0
    features: {generic-receive-offload: "off"}
    store: /var/lib/zcbench/originals/nic-eth0.json
"""

RETURN = r"""
settings: {description: The settings read after the change, per kind (features, coalesce, ring, channels)., type: dict, returned: always}
changed_values: {description: kind.key to [before, after]., type: dict, returned: always}
unsupported: {description: kind.key to the reason it was not applied., type: dict, returned: always}
"""


import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.zcbench_ethtool_text import parse_coalesce, parse_current_section, parse_features
from ansible.module_utils.zcbench_originals import load_originals, save_originals

KINDS = ("features", "coalesce", "ring", "channels")
SHOW = {"features": "-k", "coalesce": "-c", "ring": "-g", "channels": "-l"}
SET = {"features": "-K", "coalesce": "-C", "ring": "-G", "channels": "-L"}


def boolish(value) -> str:
    """YAML turns a bare on/off into a bool: map it back to ethtool's words."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value).strip().lower()


PARSERS = {
    "features": parse_features,
    "coalesce": parse_coalesce,
    "ring": parse_current_section,
    "channels": parse_current_section,
}


def find_ethtool(module: AnsibleModule) -> str | None:
    name = module.params["ethtool"]
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    return module.get_bin_path(name)


def without_ethtool(module: AnsibleModule) -> None:
    """No ethtool yet: in check mode on a fresh host the role's install step only pretended."""
    if not module.check_mode:
        module.fail_json(msg=f"{module.params['ethtool']} not found: install ethtool (nic_install_ethtool: true)")
    wanted = any(module.params[kind] for kind in KINDS)
    restoring = module.params["state"] == "restored" and bool(load_originals(module.params["store"]))
    module.exit_json(changed=wanted or restoring, changed_values={}, unsupported={}, settings={},
                     msg="check mode: ethtool is not installed yet, so the current settings cannot be read; "
                         "a real run installs it first")


class Ethtool:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.binary = find_ethtool(module)
        netns = module.params["netns"]
        self.prefix = [module.get_bin_path("ip", required=True), "netns", "exec", netns] if netns else []
        self.interface = module.params["interface"]

    def run(self, *args: str) -> tuple[int, str, str]:
        return self.module.run_command([*self.prefix, self.binary, *args], environ_update={"LC_ALL": "C"})

    def read(self, kind: str) -> dict | None:
        """Current settings of one kind, or None when the device does not support reading them."""
        rc, out, _ = self.run(SHOW[kind], self.interface)
        return PARSERS[kind](out) if rc == 0 else None

    def write(self, kind: str, key: str, value: str) -> str | None:
        """Set one key; the error text when ethtool refused."""
        rc, out, err = self.run(SET[kind], self.interface, key, value)
        if rc == 0:
            return None
        text = (err or out).strip()
        return text.splitlines()[-1] if text else f"ethtool exited {rc}"


def current_value(kind: str, settings: dict, key: str):
    entry = settings.get(key)
    return entry["value"] if kind == "features" and entry else entry


def apply_kind(tool: Ethtool, kind: str, wanted: dict, originals: dict, result: dict) -> None:
    settings = tool.read(kind)
    if settings is None:
        for key in wanted:
            result["unsupported"][f"{kind}.{key}"] = f"device cannot report {kind}"
        return
    for key, raw in wanted.items():
        value, name = boolish(raw), f"{kind}.{key}"
        before = current_value(kind, settings, key)
        if before is None or before == "n/a":
            result["unsupported"][name] = f"device has no {kind} setting {key!r}"
            continue
        if kind == "features" and settings[key]["fixed"]:
            if before != value:
                result["unsupported"][name] = f"fixed at {before}"
            continue
        if before == value:
            continue
        if tool.module.check_mode:
            result["changed_values"][name] = [before, value]
            continue
        error = tool.write(kind, key, value)
        after = current_value(kind, tool.read(kind) or {}, key)
        if after != value:
            result["unsupported"][name] = f"set {value}, device kept {after}" + (f" ({error})" if error else "")
        if after != before:
            originals.setdefault(name, before)
            result["changed_values"][name] = [before, after]


def wanted_by_kind(params: dict, originals: dict) -> dict:
    if params["state"] == "present":
        return {kind: params[kind] for kind in KINDS if params[kind]}
    wanted: dict = {}
    for name, value in originals.items():
        kind, _, key = name.partition(".")
        wanted.setdefault(kind, {})[key] = value
    return wanted


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "interface": {"type": "str", "required": True},
            "features": {"type": "dict", "default": {}},
            "coalesce": {"type": "dict", "default": {}},
            "ring": {"type": "dict", "default": {}},
            "channels": {"type": "dict", "default": {}},
            "state": {"type": "str", "default": "present", "choices": ["present", "restored"]},
            "store": {"type": "path", "required": True},
            "netns": {"type": "str"},
            "ethtool": {"type": "str", "default": "ethtool"},
        },
        supports_check_mode=True,
    )
    if find_ethtool(module) is None:
        without_ethtool(module)
    tool = Ethtool(module)
    rc, _, err = tool.run("-i", tool.interface)
    if rc != 0 and "No such device" in err:
        module.fail_json(msg=f"interface {tool.interface} does not exist")
    store = module.params["store"]
    originals = load_originals(store)
    result = {"changed_values": {}, "unsupported": {}}
    for kind, wanted in wanted_by_kind(module.params, originals).items():
        apply_kind(tool, kind, wanted, originals, result)
    if module.params["state"] == "restored":
        originals = {k: v for k, v in originals.items() if k in result["unsupported"]}
    if not module.check_mode:
        save_originals(store, originals)
    result["settings"] = {kind: tool.read(kind) for kind in KINDS}
    result["diff"] = {
        "before": "".join(f"{n}: {b}\n" for n, (b, _) in sorted(result["changed_values"].items())),
        "after": "".join(f"{n}: {a}\n" for n, (_, a) in sorted(result["changed_values"].items())),
    }
    module.exit_json(changed=bool(result["changed_values"]), **result)


if __name__ == "__main__":
    main()
