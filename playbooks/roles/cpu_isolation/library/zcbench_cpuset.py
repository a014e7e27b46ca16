#!/usr/bin/python
"""Validate the configured CPU sets against the CPUs present and derive the isolation parameters."""

from __future__ import annotations

DOCUMENTATION = r"""
module: zcbench_cpuset
short_description: Check CPU lists and compute isolcpus / nohz_full / rcu_nocbs / irqaffinity
description:
  - Parses CPU lists in the kernel's format (C(0-3,6)), fails with one clear message when a CPU
    is not present, when no housekeeping CPU is left, or when a workload CPU is also housekeeping
    and O(allow_shared_housekeeping) is false.
  - The isolated CPUs are the workload CPUs (server and loadgen) minus the housekeeping ones.
  - Reads only; never changes anything.
options:
  server_cpus: {description: CPUs of the server workers., type: str, default: ""}
  loadgen_cpus: {description: CPUs of the load generator., type: str, default: ""}
  housekeeping_cpus: {description: CPUs that keep the kernel's housekeeping and the IRQs., type: str, required: true}
  present_file: {description: Where the present CPUs are listed., type: path, default: /sys/devices/system/cpu/present}
  allow_shared_housekeeping: {description: Accept a workload CPU that is also housekeeping (small hosts)., type: bool, default: true}
"""

EXAMPLES = r"""
- name: Validate the CPU sets
  zcbench_cpuset:
    server_cpus: "2-5"
    loadgen_cpus: "6-7"
    housekeeping_cpus: "0-1"
"""

RETURN = r"""
present: {description: CPUs present., type: list, returned: always}
isolated: {description: CPUs to isolate., type: list, returned: always}
isolated_list: {description: The isolated CPUs as a kernel CPU list (empty when none)., type: str, returned: always}
housekeeping_list: {description: The housekeeping CPUs as a kernel CPU list., type: str, returned: always}
kernel_params: {description: Kernel command-line parameters for the isolation (empty when nothing is isolated)., type: list, returned: always}
"""

from ansible.module_utils.basic import AnsibleModule


def parse_cpulist(text: str) -> list[int]:
    """'0-2,5' -> [0, 1, 2, 5]; raises ValueError on anything else."""
    cpus: set[int] = set()
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        first, dash, last = part.partition("-")
        low, high = int(first), int(last) if dash else int(first)
        if low < 0 or high < low:
            raise ValueError(f"bad CPU range {part!r}")
        cpus.update(range(low, high + 1))
    return sorted(cpus)


def format_cpulist(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5' (the form the kernel prints, so comparisons are exact)."""
    ranges: list[list[int]] = []
    for cpu in sorted(cpus):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def isolation_params(workload: set[int], housekeeping: set[int]) -> tuple[str, str, list[str]]:
    """(isolated CPU list, housekeeping CPU list, kernel parameters); zcbench's doctor uses it too."""
    isolated_list = format_cpulist(sorted(set(workload) - set(housekeeping)))
    housekeeping_list = format_cpulist(sorted(housekeeping))
    if not isolated_list:
        return "", housekeeping_list, []
    return isolated_list, housekeeping_list, [
        f"isolcpus=managed_irq,domain,{isolated_list}",
        f"nohz_full={isolated_list}",
        f"rcu_nocbs={isolated_list}",
        f"irqaffinity={housekeeping_list}",
    ]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "server_cpus": {"type": "str", "default": ""},
            "loadgen_cpus": {"type": "str", "default": ""},
            "housekeeping_cpus": {"type": "str", "required": True},
            "present_file": {"type": "path", "default": "/sys/devices/system/cpu/present"},
            "allow_shared_housekeeping": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        with open(params["present_file"]) as handle:
            present = parse_cpulist(handle.read())
        sets = {name: parse_cpulist(params[name]) for name in ("server_cpus", "loadgen_cpus", "housekeeping_cpus")}
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"cannot read the CPU sets: {exc}")
    for name, cpus in sets.items():
        missing = sorted(set(cpus) - set(present))
        if missing:
            module.fail_json(msg=f"{name}={params[name]!r} names CPUs {format_cpulist(missing)} "
                                 f"but only {format_cpulist(present)} are present")
    housekeeping = set(sets["housekeeping_cpus"])
    if not housekeeping:
        module.fail_json(msg="housekeeping_cpus is empty: at least one CPU must keep the kernel's work")
    workload = set(sets["server_cpus"]) | set(sets["loadgen_cpus"])
    shared = workload & housekeeping
    if shared and not params["allow_shared_housekeeping"]:
        module.fail_json(msg=f"CPUs {format_cpulist(sorted(shared))} are both workload and housekeeping")
    isolated_list, housekeeping_list, kernel_params = isolation_params(workload, housekeeping)
    module.exit_json(
        changed=False, present=present, isolated=sorted(workload - housekeeping), isolated_list=isolated_list,
        housekeeping_list=housekeeping_list, kernel_params=kernel_params,
    )


if __name__ == "__main__":
    main()
