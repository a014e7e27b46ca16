"""Parsers of ethtool's text output (-k, -c, -g, -l), run with LC_ALL=C.

One copy for both readers: the nic role's module (as ansible.module_utils.zcbench_ethtool_text)
and zcbench.host.facts (loaded from this file), so what provisioning sets and what doctor and the
bench manifest report are read the same way. Pure functions: no Ansible import.
"""

from __future__ import annotations

import re


def parse_features(text: str) -> dict:
    """ethtool -k: {feature: {"value": "on"|"off", "fixed": bool}}."""
    settings = {}
    for line in text.splitlines()[1:]:
        match = re.match(r"^\s*([\w-]+): (on|off)( \[fixed\])?", line)
        if match:
            settings[match.group(1)] = {"value": match.group(2), "fixed": bool(match.group(3))}
    return settings


def parse_coalesce(text: str) -> dict:
    """ethtool -c: {parameter: value}; parameters the device reports as n/a are left out (the
    Adaptive line is kept as printed: it says which directions exist)."""
    settings = {}
    for line in text.splitlines():
        adaptive = re.match(r"^Adaptive RX:\s*(\S+)\s+TX:\s*(\S+)", line)
        if adaptive:
            settings["adaptive-rx"], settings["adaptive-tx"] = adaptive.groups()
            continue
        match = re.match(r"^([\w-]+):\s+(\S+)$", line)
        if match and match.group(2) != "n/a":
            settings[match.group(1)] = match.group(2)
    return settings


def parse_current_section(text: str) -> dict:
    """The 'Current hardware settings' block of ethtool -g / -l, keyed as -G / -L name them."""
    _, _, current = text.partition("Current hardware settings:")
    settings = {}
    for line in current.splitlines():
        match = re.match(r"^([A-Za-z][\w ]*?):\s+(\S+)$", line.strip())
        if match:
            settings[match.group(1).lower().replace(" ", "-")] = match.group(2)
    return settings
