"""--list-modes: the server's send modes, from the header zcbench's arm registry reads too."""

from __future__ import annotations

import json
import subprocess

from zcbench.core import arms


def test_list_modes_is_the_registry_of_send_mode_arms(server_binary):
    proc = subprocess.run([str(server_binary), "--list-modes"], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)["send_modes"]
    assert [mode["name"] for mode in listed] == [arm.name for arm in arms.server_modes()]
    for mode in listed:
        arm = arms.get(mode["name"])
        assert (mode["zero_copy"], mode["registered_buffer"], mode["user_pages"], mode["limit"], mode["kernel"],
                tuple(mode["needs"].split()), mode["title"]) == (
            arm.zero_copy, arm.registered_buffer, arm.user_pages, arm.limit, arm.kernel, arm.needs, arm.title)


def test_an_unknown_send_mode_names_every_known_one(server_binary):
    proc = subprocess.run([str(server_binary), "--send", "no-such-mode"], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and all(arm.name in proc.stderr for arm in arms.server_modes())
