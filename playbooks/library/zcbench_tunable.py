#!/usr/bin/python
"""Set kernel tunables that live in files (/proc/sys, /sys, /proc/irq); record originals for revert."""

from __future__ import annotations

DOCUMENTATION = r"""
module: zcbench_tunable
short_description: Set runtime kernel tunables exposed as files, revertibly
description:
  - Writes each value of O(values) to its file when the current value differs (values compare
    with whitespace collapsed, so C(1024 65535) matches C(1024\t65535)), then re-reads it.
  - The first time a file is changed its previous value is recorded in O(store) (a JSON file);
    C(state=restored) writes the recorded values back and forgets them.
  - With O(best_effort) a file the kernel refuses to write (e.g. a managed IRQ's affinity) is
    reported in RV(refused) instead of failing.
options:
  values: {description: Mapping of file path to desired value., type: dict, default: {}}
  state: {description: present or restored., type: str, default: present, choices: [present, restored]}
  store: {description: JSON file holding the original values., type: path, required: true}
  best_effort: {description: Report instead of fail when a write is refused., type: bool, default: false}
"""

EXAMPLES = r"""
- name: Raise the listen backlog
  zcbench_tunable:
    values: {/proc/sys/net/core/somaxconn: "65535"}
    store: /var/lib/zcbench/originals/sysctl.json
"""

RETURN = r"""
changed_values: {description: Path to [before, after] for every file written., type: dict, returned: always}
refused: {description: Path to the error for writes the kernel refused (best_effort)., type: dict, returned: always}
"""


from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.zcbench_originals import load_originals, save_originals, set_knob


def normalize(value) -> str:
    return " ".join(str(value).split())


def apply(module: AnsibleModule, targets: dict, originals: dict) -> tuple[dict, dict]:
    changed, refused = {}, {}
    for path, wanted in targets.items():
        set_knob(path, path, wanted, check_mode=module.check_mode, normalize=normalize,
                 originals=originals, changed=changed, refused=refused)
    return changed, refused


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "values": {"type": "dict", "default": {}},
            "state": {"type": "str", "default": "present", "choices": ["present", "restored"]},
            "store": {"type": "path", "required": True},
            "best_effort": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    store = module.params["store"]
    originals = load_originals(store)
    if module.params["state"] == "present":
        targets = {path: normalize(value) for path, value in module.params["values"].items()}
    else:
        targets = dict(originals)
    changed, refused = apply(module, targets, originals)
    if module.params["state"] == "restored":
        for path in list(originals):
            if path not in refused:
                del originals[path]
    if not module.check_mode:
        save_originals(store, originals)
    diff = {
        "before": "".join(f"{p} = {b}\n" for p, (b, _) in sorted(changed.items())),
        "after": "".join(f"{p} = {a}\n" for p, (_, a) in sorted(changed.items())),
    }
    result = {"changed": bool(changed), "changed_values": changed, "refused": refused, "diff": diff}
    if refused and not module.params["best_effort"]:
        module.fail_json(msg="; ".join(f"{p}: {e}" for p, e in refused.items()), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
