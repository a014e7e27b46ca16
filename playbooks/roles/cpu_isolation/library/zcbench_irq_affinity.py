#!/usr/bin/python
"""Pin IRQs, named by their action (e.g. eth0-TxRx-0), to CPUs; record originals by that name."""

from __future__ import annotations

DOCUMENTATION = r"""
module: zcbench_irq_affinity
short_description: Set IRQ affinities revertibly, keyed by the IRQ's action name
description:
  - IRQ numbers can change across reboots and driver reloads; action names (as in
    C(/sys/kernel/irq/N/actions), e.g. C(virtio0-input.0)) do not. Each name of O(irqs) is
    looked up to its current number, and its C(smp_affinity_list) set to O(cpus).
  - The first time an IRQ is changed its previous affinity is recorded in O(store) under its
    name; C(state=restored) looks each recorded name up again (its number may differ now),
    writes the original back and forgets it. A name no longer present is reported and forgotten.
  - The kernel refuses new affinities for IRQs it manages itself; those are reported in
    RV(refused), and fail the task only without O(best_effort).
options:
  irqs: {description: Action names of the IRQs to pin., type: list, elements: str, default: []}
  cpus: {description: CPU list (kernel format) to pin them to., type: str, default: ""}
  state: {description: present or restored., type: str, default: present, choices: [present, restored]}
  store: {description: JSON file of the recorded originals., type: path, required: true}
  best_effort: {description: Report instead of fail when a write is refused., type: bool, default: true}
  sysfs: {description: Root of sysfs (tests)., type: path, default: /sys}
  procfs: {description: Root of procfs (tests)., type: path, default: /proc}
"""

EXAMPLES = r"""
- name: Keep eth0's queues on CPU 0
  zcbench_irq_affinity:
    irqs: [eth0-TxRx-0, eth0-TxRx-1]
    cpus: "0"
    store: /var/lib/zcbench/originals/cpu-isolation-irqs.json
"""

RETURN = r"""
changed_values: {description: Name to [before, after] for every IRQ written., type: dict, returned: always}
refused: {description: Name to the reason for IRQs not set (missing, refused by the kernel)., type: dict, returned: always}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.zcbench_originals import load_originals, save_originals, set_knob


def irq_numbers_by_name(sysfs: str) -> dict[str, int]:
    """Every IRQ action name to its current number (an IRQ shared by several actions is listed
    under each)."""
    base = os.path.join(sysfs, "kernel", "irq")
    names: dict[str, int] = {}
    for entry in os.listdir(base) if os.path.isdir(base) else []:
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(base, entry, "actions")) as handle:
                actions = handle.read().strip()
        except OSError:
            continue
        for name in filter(None, (a.strip() for a in actions.split(","))):
            names.setdefault(name, int(entry))
    return names


def affinity_path(procfs: str, number: int) -> str:
    return os.path.join(procfs, "irq", str(number), "smp_affinity_list")


def normalize(value: str) -> str:
    return " ".join(value.split())


def apply(targets: dict[str, str], originals: dict, sysfs: str, procfs: str, check_mode: bool) -> tuple[dict, dict]:
    """Write each name's affinity; record first originals into `originals` (by name)."""
    numbers = irq_numbers_by_name(sysfs)
    changed, refused = {}, {}
    for name, wanted in targets.items():
        if name not in numbers:
            refused[name] = "no IRQ with this name now"
            continue
        set_knob(name, affinity_path(procfs, numbers[name]), wanted, check_mode=check_mode,
                 normalize=normalize, originals=originals, changed=changed, refused=refused)
    return changed, refused


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "irqs": {"type": "list", "elements": "str", "default": []},
            "cpus": {"type": "str", "default": ""},
            "state": {"type": "str", "default": "present", "choices": ["present", "restored"]},
            "store": {"type": "path", "required": True},
            "best_effort": {"type": "bool", "default": True},
            "sysfs": {"type": "path", "default": "/sys"},
            "procfs": {"type": "path", "default": "/proc"},
        },
        supports_check_mode=True,
    )
    params = module.params
    originals = load_originals(params["store"])
    if params["state"] == "present":
        targets = {name: normalize(params["cpus"]) for name in params["irqs"]}
    else:
        targets = dict(originals)
    changed, refused = apply(targets, originals, params["sysfs"], params["procfs"], module.check_mode)
    if params["state"] == "restored":
        # forget restored ones and names gone for good; keep only what the kernel refused
        originals = {n: v for n, v in originals.items() if n in refused and refused[n] != "no IRQ with this name now"}
    if not module.check_mode:
        save_originals(params["store"], originals)
    diff = {
        "before": "".join(f"IRQ {n} = {b}\n" for n, (b, _) in sorted(changed.items())),
        "after": "".join(f"IRQ {n} = {a}\n" for n, (_, a) in sorted(changed.items())),
    }
    result = {"changed": bool(changed), "changed_values": changed, "refused": refused, "diff": diff}
    if refused and not params["best_effort"]:
        module.fail_json(msg="; ".join(f"{n}: {e}" for n, e in refused.items()), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
