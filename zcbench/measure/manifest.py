"""A run's manifest.json: everything needed to know what was measured, where and how.

Written (atomically) when the run starts with "complete": false, and rewritten when it ends:
"complete": true, or false with the reason (interrupted, failed: ...). A reader can thus
always tell a finished run from one cut short.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

from zcbench import __version__
from zcbench.core.paths import ROOT
from zcbench.core.rundir import MANIFEST_SCHEMA
from zcbench.devtools.lockfile import LOCK, locked_pins, normalize
from zcbench.host.facts import collect_host_facts
from zcbench.host.remote_facts import collect_host_facts_over_ssh
from zcbench.measure import plan
from zcbench.measure.nginx import nginx_reference_info, render_nginx_config


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def git_state(root: Path = ROOT) -> dict:
    """Commit and dirty flag of the checkout the run came from (None outside a git tree)."""
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def python_packages() -> dict:
    """The installed version of every package zcbench uses (its requirements, theirs, and so
    on: what runs in a bench), and whether each is the version requirements.lock pins."""
    installed, todo = {}, ["zcbench"]
    while todo:
        name = normalize(todo.pop())
        if name in installed:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        installed[name] = dist.version
        for text in dist.requires or ():
            requirement = Requirement(text)
            # the runtime closure only: extras (tests, lock) and other platforms' packages are not used
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    installed.pop("zcbench", None)
    pins = locked_pins(LOCK) if LOCK.exists() else {}
    unlocked = sorted(name for name, version in installed.items() if version not in pins.get(name, ()))
    return {"python": platform.python_version(), "packages": dict(sorted(installed.items())),
            "not_as_locked": unlocked}


def docker_facts(client) -> dict:
    try:
        version, info = client.version(), client.info()
    except Exception as exc:  # noqa: BLE001 - the manifest records, it does not fail the run
        return {"error": str(exc)}
    return {
        "engine_version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "cgroup_version": info.get("CgroupVersion"),
        "cgroup_driver": info.get("CgroupDriver"),
        "storage_driver": info.get("Driver"),
        "security_options": info.get("SecurityOptions"),
    }


def host_facts(interface: str) -> dict:
    """The host as zcbench.host.facts sees it: the same collector `invoke doctor` uses. It never
    raises: a fact it cannot read is null, with the reason under "errors"."""
    return collect_host_facts(interface)


def facts_of(host) -> dict:
    """An inventory host's facts: collected here for this machine, over SSH for another (the
    same collectors either way)."""
    return host_facts(host.interface) if host.is_control else collect_host_facts_over_ssh(host, host.interface)


def inventory_hosts_record(inventory, clients: dict) -> dict:
    """Every host of a run across an inventory: its part, how it was reached, its engine and its
    facts (the server host's are the manifest's "host"). clients: host name -> Docker client."""
    record = {"inventory": str(inventory.path), "path": inventory.path_description()}
    for host in inventory.hosts:
        record[host.name] = {
            "groups": list(host.groups), "address": host.address,
            "interface": host.interface, "docker_url": host.docker_url,
            "docker": docker_facts(clients[host.name]) if host.name in clients else None,
            "facts": "the server host: see the manifest's host" if host.name == inventory.server.name
            else facts_of(host),
        }
    return record


def initial_manifest(*, run_id: str, config, cells: list, path: dict, client, privilege,
                     image_ids: dict, limits: dict, server_host=None) -> dict:
    """The manifest before the first cell; `client` is the server's engine, "host" the facts
    of the server's host (this machine, or server_host's over SSH)."""
    return {
        "schema": MANIFEST_SCHEMA,
        "zcbench_version": __version__,
        "run_id": run_id,
        "complete": False,
        "incomplete_reason": "running",
        "started_at": utc_now(),
        "finished_at": None,
        "config": config.to_json(),
        "plan": {"seed": config.seed, "cells": len(cells), **plan.design(config),
                 "order": [c.to_json() for c in cells]},
        "cpus": {"server": list(config.server_cpus), "loadgen": list(config.loadgen_cpus),
                 "wrk_threads": config.threads,
                 "note": "server and loadgen pinned to disjoint CPUs (container cpusets)"},
        "path": path,
        "git": git_state(),
        "images": image_ids,
        "docker": docker_facts(client),
        "privilege": privilege.to_json() if privilege else None,
        "limits": limits,
        "host": facts_of(server_host) if server_host is not None else host_facts(path.get("interface", "lo")),
        "python": platform.python_version(),
        "python_packages": python_packages(),
        "reference": _reference(config, path.get("server_bind", "127.0.0.1")),
    }


def _reference(config, bind: str) -> dict | None:
    """What the nginx reference serves at each response size, and the nginx.conf it runs with."""
    if "nginx" not in config.servers:
        return None
    by_size = {}
    for size in config.response_sizes:
        conf, body_file = render_nginx_config(port=config.port, bind=bind, response_size=size,
                                              nofile=config.nofile, cpus=config.server_cpus)
        by_size[str(size)] = {**nginx_reference_info(size), "nginx_conf": conf,
                              "body_file_sha256": hashlib.sha256(body_file).hexdigest() if body_file else None}
    return {"server": "nginx-light (Debian)", "by_response_size": by_size}


def finish_manifest(manifest: dict, *, complete: bool, reason: str | None, timing: dict,
                    extra: dict | None = None) -> dict:
    manifest = dict(manifest)
    manifest.update(complete=complete, incomplete_reason=None if complete else reason,
                    finished_at=utc_now(), timing=timing, **(extra or {}))
    return manifest
