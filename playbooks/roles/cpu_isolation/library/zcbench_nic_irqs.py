#!/usr/bin/python
"""List the IRQs of a network interface (read only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: zcbench_nic_irqs
short_description: The MSI IRQs of a network interface
description:
  - Looks for C(msi_irqs) under the interface's device in sysfs and, for a virtio NIC whose
    device is a child of the PCI function, under its parent. Returns no IRQs for the loopback,
    virtual links and unknown interfaces (with the reason).
  - Reads only; never changes anything.
options:
  interface: {description: Network interface., type: str, required: true}
  sysfs: {description: Root of sysfs (tests)., type: path, default: /sys}
"""

EXAMPLES = r"""
- name: Find eth0's IRQs
  zcbench_nic_irqs:
    interface: eth0
"""

RETURN = r"""
irqs: {description: IRQ numbers, ascending., type: list, elements: int, returned: always}
names: {description: Their action names (from /sys/kernel/irq/N/actions), stable across reboots; in the order of RV(irqs), IRQs without an action left out., type: list, elements: str, returned: always}
reason: {description: Why no IRQs were found (empty when some were)., type: str, returned: always}
"""

import os

from ansible.module_utils.basic import AnsibleModule


def nic_irqs(sysfs: str, interface: str) -> tuple[list[int], str]:
    device_link = os.path.join(sysfs, "class", "net", interface, "device")
    if not os.path.exists(os.path.join(sysfs, "class", "net", interface)):
        return [], f"no interface {interface}"
    if not os.path.exists(device_link):
        return [], f"{interface} has no device (loopback or virtual link)"
    device = os.path.realpath(device_link)
    for candidate in (device, os.path.dirname(device)):
        msi_dir = os.path.join(candidate, "msi_irqs")
        if os.path.isdir(msi_dir):
            return sorted(int(name) for name in os.listdir(msi_dir) if name.isdigit()), ""
    return [], f"{interface}'s device has no MSI IRQs"


def irq_names(sysfs: str, irqs: list[int]) -> list[str]:
    names = []
    for irq in irqs:
        try:
            with open(os.path.join(sysfs, "kernel", "irq", str(irq), "actions")) as handle:
                names += [a.strip() for a in handle.read().split(",") if a.strip()]
        except OSError:
            continue
    return names


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "interface": {"type": "str", "required": True},
            "sysfs": {"type": "path", "default": "/sys"},
        },
        supports_check_mode=True,
    )
    irqs, reason = nic_irqs(module.params["sysfs"], module.params["interface"])
    module.exit_json(changed=False, irqs=irqs, names=irq_names(module.params["sysfs"], irqs), reason=reason)


if __name__ == "__main__":
    main()
