#!/usr/bin/python
"""Decide whether the running kernel's command line is what the CPU isolation wants (read only)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: zcbench_kernel_cmdline
short_description: Whether a reboot is needed for the kernel command line the playbook wants
description:
  - Compares the running kernel's command line with O(wanted). A reboot is required when a
    wanted parameter is missing, or when the running kernel still carries a parameter of the
    same names (O(managed)) that is not wanted any more (after a revert, or after the CPU sets
    shrank) and that the host's own GRUB configuration does not set either.
  - The host's own configuration is every C(GRUB_CMDLINE_LINUX*) line of O(grub_defaults) and of
    the C(*.cfg) files beside it in C(grub.d), except O(dropin) (zcbench's own).
  - Reads only; never changes anything.
options:
  wanted: {description: Parameters the kernel should run with., type: list, elements: str, default: []}
  managed: {description: Parameter names zcbench sets., type: list, elements: str, default: [isolcpus, nohz_full, rcu_nocbs, irqaffinity]}
  cmdline: {description: The running command line., type: path, default: /proc/cmdline}
  grub_defaults: {description: GRUB's defaults file., type: path, default: /etc/default/grub}
  dropin: {description: zcbench's GRUB drop-in (left out of the host's own configuration)., type: path, required: true}
"""

EXAMPLES = r"""
- name: Decide whether a reboot is required
  zcbench_kernel_cmdline:
    wanted: [isolcpus=managed_irq,domain,1, nohz_full=1]
    dropin: /etc/default/grub.d/60-zcbench-cpu-isolation.cfg
"""

RETURN = r"""
reboot_required: {description: Whether the running kernel differs from what is wanted., type: bool, returned: always}
missing: {description: Wanted parameters the running kernel lacks., type: list, returned: always}
stale: {description: Managed parameters the running kernel carries but nobody wants any more., type: list, returned: always}
reason: {description: One line saying why a reboot is required (empty when not)., type: str, returned: always}
"""

import glob
import os
import re

from ansible.module_utils.basic import AnsibleModule

_GRUB_LINE = re.compile(r'^\s*GRUB_CMDLINE_LINUX(?:_DEFAULT)?=(["\']?)(.*)\1\s*$')


def grub_words(text: str) -> set[str]:
    """Kernel parameters set by GRUB_CMDLINE_LINUX(_DEFAULT) lines (shell references left out)."""
    words: set[str] = set()
    for line in text.splitlines():
        match = _GRUB_LINE.match(line)
        if match:
            words.update(w for w in match.group(2).split() if not w.startswith("$"))
    return words


def own_grub_words(grub_defaults: str, dropin: str) -> set[str]:
    paths = [grub_defaults, *sorted(glob.glob(os.path.join(grub_defaults + ".d", "*.cfg")))]
    words: set[str] = set()
    for path in paths:
        if os.path.realpath(path) == os.path.realpath(dropin):
            continue
        try:
            with open(path) as handle:
                words |= grub_words(handle.read())
        except OSError:
            continue
    return words


def decide(wanted: list[str], running: list[str], managed: list[str], own: set[str]) -> dict:
    running_set = set(running)
    missing = [w for w in wanted if w not in running_set]
    stale = [w for w in running if w.partition("=")[0] in managed and w not in wanted and w not in own]
    reasons = []
    if missing:
        reasons.append(f"the running kernel lacks {' '.join(missing)}")
    if stale:
        reasons.append(f"the running kernel still carries {' '.join(stale)}, which the playbook no longer sets")
    return {"reboot_required": bool(reasons), "missing": missing, "stale": stale, "reason": "; ".join(reasons)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "wanted": {"type": "list", "elements": "str", "default": []},
            "managed": {"type": "list", "elements": "str",
                        "default": ["isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity"]},
            "cmdline": {"type": "path", "default": "/proc/cmdline"},
            "grub_defaults": {"type": "path", "default": "/etc/default/grub"},
            "dropin": {"type": "path", "required": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    with open(params["cmdline"]) as handle:
        running = handle.read().split()
    own = own_grub_words(params["grub_defaults"], params["dropin"])
    module.exit_json(changed=False, **decide(params["wanted"], running, params["managed"], own))


if __name__ == "__main__":
    main()
