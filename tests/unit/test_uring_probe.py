"""The io_uring probe against this kernel and against liburing's header."""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zcbench.core.paths import ROOT
from zcbench.host import uring

pytestmark = pytest.mark.provisioning

LIBURING_HEADER = Path("/usr/include/liburing/io_uring.h")


def _header_enum(header_text: str, first: str, prefix: str) -> dict[str, int]:
    """Values of an implicitly numbered C enum starting at `first` (= 0)."""
    body = header_text[header_text.index(first):]
    names = re.findall(rf"^\s*{prefix}(\w+),", body, re.M)
    return {name: index for index, name in enumerate(names)}


def _probe_in_subprocess(*wrapper: str, preexec=None) -> dict:
    out = subprocess.run(
        [*wrapper, sys.executable, "-m", "zcbench.host.uring"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=30, preexec_fn=preexec,
    ).stdout
    return json.loads(out)


@pytest.mark.skipif(not LIBURING_HEADER.exists(), reason="liburing-dev not installed (bootstrap.sh installs it)")
def test_opcode_numbers_match_liburing_header():
    values = _header_enum(LIBURING_HEADER.read_text(), "IORING_OP_NOP", "IORING_OP_")
    assert values["SEND_ZC"] == 47 and values["SENDMSG_ZC"] == 48
    for name, code in uring.OPCODES.items():
        assert values[name] == code, name


@pytest.mark.skipif(not LIBURING_HEADER.exists(), reason="liburing-dev not installed (bootstrap.sh installs it)")
def test_feature_bits_match_liburing_header():
    text = LIBURING_HEADER.read_text()
    bits = {name: int(bit) for name, bit in re.findall(r"#define IORING_FEAT_(\w+)\s+\(1U << (\d+)\)", text)}
    assert bits, "no IORING_FEAT_ defines parsed"
    for name, bit in bits.items():
        assert uring.FEATURES[bit] == name


def test_feature_names_decodes_bits_and_keeps_unknown_ones():
    assert uring.feature_names(0b101) == ["SINGLE_MMAP", "SUBMIT_STABLE"]
    assert uring.feature_names(1 << 30) == ["bit30"]


def test_probe_on_this_kernel_finds_send_zc():
    facts = uring.probe()
    assert facts["usable"] is True, facts["error"]
    assert facts["send_zc"] is True and facts["opcodes"]["SEND_ZC"] is True
    assert facts["sendmsg_zc"] is True
    # 6.2+ (this machine runs 6.18): SEND_ZC takes IORING_SEND_ZC_REPORT_USAGE
    assert facts["send_zc_report_usage"] is True and facts["zc_copied_share"] == "reported"
    assert uring.OPCODES["SEND"] in facts["supported_opcodes"]
    assert "SINGLE_MMAP" in facts["features"]
    # 6.x kernels accept both setup flags the server asks for.
    assert facts["setup_flags"] == {"SINGLE_ISSUER": True, "DEFER_TASKRUN": True}
    json.dumps(facts)  # the manifest stores it as JSON


def test_probe_reports_the_memlock_limit_it_runs_under():
    limit = 4 * 1024 * 1024

    def lower_memlock():
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (limit, limit))

    facts = _probe_in_subprocess(preexec=lower_memlock)
    assert facts["memlock_limit"] == {"soft": limit, "hard": limit}


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing")
def test_probe_sees_zc_charged_to_memlock_without_cap_ipc_lock():
    full = uring.probe()
    if not full["cap_ipc_lock"]:
        pytest.skip("this process already lacks CAP_IPC_LOCK")
    dropped = _probe_in_subprocess("setpriv", "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock")
    assert dropped["cap_ipc_lock"] is False
    assert dropped["zc_charged_to_memlock"] is True
    assert full["zc_charged_to_memlock"] is False
    assert dropped["usable"] is True  # dropping the capability does not make io_uring unusable


def test_send_zc_flag_probe_tells_known_from_unknown_flags():
    """The same submission that finds REPORT_USAGE accepted finds a flag no kernel defines
    refused: the probe can answer "no", as it must on 6.0/6.1."""
    kernel = uring._Kernel()
    assert kernel.send_zc_flags_accepted(uring.IORING_SEND_ZC_REPORT_USAGE) is True
    assert kernel.send_zc_flags_accepted(0) is True
    assert kernel.send_zc_flags_accepted(1 << 15) is False


@pytest.mark.skipif(not LIBURING_HEADER.exists(), reason="liburing-dev not installed (bootstrap.sh installs it)")
def test_sqe_layout_matches_liburing_header():
    import struct

    assert struct.calcsize(uring.SQE_FORMAT) == 64 and struct.calcsize(uring.CQE_FORMAT) == 16
    text = LIBURING_HEADER.read_text()
    assert re.search(r"#define IORING_OFF_SQES\s+0x10000000ULL", text)
    assert re.search(r"#define IORING_OFF_CQ_RING\s+0x8000000ULL", text)


def test_probe_reports_every_send_mode_as_the_server_does():
    """The Python probe and the server's --list-modes read the same `needs` (zcb_modes.h) and
    reach the same verdict per mode on this kernel."""
    binary = ROOT / "server" / "build" / "zcb-server"
    subprocess.run(["make", "-s", "-C", str(ROOT / "server")], check=True)
    listed = json.loads(subprocess.run([str(binary), "--list-modes"], capture_output=True, text=True,
                                       check=True).stdout)["send_modes"]
    facts = uring.probe()
    assert list(facts["modes"]) == [mode["name"] for mode in listed]
    for mode in listed:
        assert facts["modes"][mode["name"]]["supported"] is mode["supported"], mode["name"]
    # 6.18 has every one of them
    assert all(support == {"supported": True, "unsupported": None} for support in facts["modes"].values())


def test_a_mode_the_kernel_lacks_says_what_it_lacks():
    """As on a 5.x kernel: SEND and SPLICE but no SEND_ZC, SENDMSG_ZC, SENDMSG/RECVMSG."""
    support = uring.mode_support([uring.OPCODES["SEND"], uring.OPCODES["SPLICE"]])
    assert support["regular"] == {"supported": True, "unsupported": None}
    assert support["splice"]["supported"] is True
    assert support["zc"] == {"supported": False,
                             "unsupported": "this kernel lacks IORING_OP_SEND_ZC (needs Linux 6.0+)"}
    assert support["sendmsg-zc"]["unsupported"] == "this kernel lacks IORING_OP_SENDMSG_ZC (needs Linux 6.1+)"
    assert "IORING_OP_SENDMSG " in support["msg-zerocopy"]["unsupported"]
    unusable = uring.mode_support(None, "io_uring unusable: EPERM")
    assert all(not s["supported"] and s["unsupported"] == "io_uring unusable: EPERM" for s in unusable.values())
