"""Probe the running kernel's io_uring through cffi in ABI mode (no compiler, no liburing).

`probe()` answers, for the calling process: can it create a ring at all (kernel.io_uring_disabled,
seccomp), which opcodes the kernel supports (SEND_ZC, SENDMSG_ZC...), which of the server's send
modes it supports and why not (each mode's `needs` in server/include/zcb_modes.h: opcodes and
socket options, the same list the server's --list-modes probes), whether SEND_ZC takes
IORING_SEND_ZC_REPORT_USAGE (Linux 6.2+; without it the copied share of zero-copy sends is
unknown), which setup features and flags it has, and whether zero-copy sends would be charged to
RLIMIT_MEMLOCK (they are unless the ring's creator holds CAP_IPC_LOCK; see DESIGN.md "Kernel facts").

It runs wherever Python and cffi run: on the host (the project's venv has cffi) and inside a
container whose python3 has cffi (Debian: python3-cffi), as `python3 -m zcbench.host.uring`, which
prints the probe as JSON. Without cffi the ring cannot be probed: the facts read from /proc are
still returned and `usable` is null with the reason.
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import resource
import socket
import struct

from zcbench.core import arms

# Syscall numbers of the unified table (since Linux 5.1 every architecture but alpha uses these).
SYS_IO_URING_SETUP = 425
SYS_IO_URING_ENTER = 426
SYS_IO_URING_REGISTER = 427

IORING_OFF_SQ_RING = 0
IORING_OFF_CQ_RING = 0x8000000
IORING_OFF_SQES = 0x10000000
IORING_ENTER_GETEVENTS = 1
IORING_SEND_ZC_REPORT_USAGE = 1 << 3  # sqe->ioprio of SEND_ZC, Linux 6.2+
SQE_FORMAT = "<BBHiQQIIQHHiQQ"  # struct io_uring_sqe, 64 bytes, the fields SEND_ZC uses
CQE_FORMAT = "<QiI"  # struct io_uring_cqe: user_data, res, flags

IORING_REGISTER_PROBE = 8
IO_URING_OP_SUPPORTED = 1 << 0
PROBE_OPS = 256  # room for every opcode a u8 can name

IORING_SETUP_SINGLE_ISSUER = 1 << 12
IORING_SETUP_DEFER_TASKRUN = 1 << 13

CAP_IPC_LOCK = 14

# Opcodes the zcbench server uses (values of enum io_uring_op; tests check them against
# liburing's io_uring.h when it is installed).
OPCODES = {
    "SENDMSG": 9,
    "RECVMSG": 10,
    "ACCEPT": 13,
    "CLOSE": 19,
    "SEND": 26,
    "RECV": 27,
    "SPLICE": 30,
    "PROVIDE_BUFFERS": 31,
    "SEND_ZC": 47,
    "SENDMSG_ZC": 48,
}

# Socket options a send mode may need (linux/socket.h; Python's socket module lacks SO_ZEROCOPY).
SOCKET_OPTIONS = {"SO_ZEROCOPY": 60}

# IORING_FEAT_* bits of io_uring_params.features, in bit order.
FEATURES = (
    "SINGLE_MMAP", "NODROP", "SUBMIT_STABLE", "RW_CUR_POS", "CUR_PERSONALITY", "FAST_POLL",
    "POLL_32BITS", "SQPOLL_NONFIXED", "EXT_ARG", "NATIVE_WORKERS", "RSRC_TAGS", "CQE_SKIP",
    "LINKED_FILE", "REG_REG_RING", "RECVSEND_BUNDLE", "MIN_TIMEOUT", "RW_ATTR", "NO_IOWAIT",
)

_CDEF = """
long syscall(long number, ...);
struct io_sqring_offsets { uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array,
                           resv1; uint64_t user_addr; };
struct io_cqring_offsets { uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags,
                           resv1; uint64_t user_addr; };
struct io_uring_params { uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle,
                         features, wq_fd, resv[3]; struct io_sqring_offsets sq_off;
                         struct io_cqring_offsets cq_off; };
struct io_uring_probe_op { uint8_t op; uint8_t resv; uint16_t flags; uint32_t resv2; };
struct io_uring_probe { uint8_t last_op; uint8_t ops_len; uint16_t resv; uint32_t resv2[3];
                        struct io_uring_probe_op ops[]; };
"""


class _Kernel:
    """libc's syscall(2) and the io_uring structs, loaded once."""

    def __init__(self) -> None:
        import cffi  # imported here so the /proc facts work where cffi is missing

        self.ffi = cffi.FFI()
        self.ffi.cdef(_CDEF)
        self.libc = self.ffi.dlopen(None)

    def setup(self, entries: int, flags: int) -> tuple[int, int]:
        """io_uring_setup(2): (ring fd or -1, errno) and the features the kernel reported."""
        params = self.ffi.new("struct io_uring_params *")
        params.flags = flags
        fd = self.libc.syscall(SYS_IO_URING_SETUP, self.ffi.cast("unsigned", entries), params)
        if fd < 0:
            return -self.ffi.errno, 0
        return fd, params.features

    def send_zc_flags_accepted(self, zc_flags: int) -> bool:
        """Submit one SEND_ZC with these flags in sqe->ioprio on fd -1. The kernel checks the flags
        when it prepares the request, before it looks up the file: it fails with EINVAL if it does
        not know a flag, else with EBADF. Nothing is sent."""
        params = self.ffi.new("struct io_uring_params *")
        fd = self.libc.syscall(SYS_IO_URING_SETUP, self.ffi.cast("unsigned", 1), params)
        if fd < 0:
            raise OSError(self.ffi.errno, os.strerror(self.ffi.errno), "io_uring_setup")
        maps: list[mmap.mmap] = []
        try:
            sq_off, cq_off = params.sq_off, params.cq_off
            sq = mmap.mmap(fd, sq_off.array + 4 * params.sq_entries, offset=IORING_OFF_SQ_RING)
            maps.append(sq)
            cq = mmap.mmap(fd, cq_off.cqes + 16 * params.cq_entries, offset=IORING_OFF_CQ_RING)
            maps.append(cq)
            sqes = mmap.mmap(fd, 64 * params.sq_entries, offset=IORING_OFF_SQES)
            maps.append(sqes)
            sqes[0:64] = struct.pack(SQE_FORMAT, OPCODES["SEND_ZC"], 0, zc_flags, -1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0)
            (tail,) = struct.unpack_from("<I", sq, sq_off.tail)
            (mask,) = struct.unpack_from("<I", sq, sq_off.ring_mask)
            struct.pack_into("<I", sq, sq_off.array + 4 * (tail & mask), 0)
            struct.pack_into("<I", sq, sq_off.tail, tail + 1)  # the syscall below orders it
            rc = self.libc.syscall(SYS_IO_URING_ENTER, self.ffi.cast("int", fd), self.ffi.cast("unsigned", 1),
                                   self.ffi.cast("unsigned", 1), self.ffi.cast("unsigned", IORING_ENTER_GETEVENTS),
                                   self.ffi.NULL, self.ffi.cast("size_t", 0))
            if rc < 0:
                raise OSError(self.ffi.errno, os.strerror(self.ffi.errno), "io_uring_enter")
            (head,) = struct.unpack_from("<I", cq, cq_off.head)
            (cq_mask,) = struct.unpack_from("<I", cq, cq_off.ring_mask)
            _, res, _ = struct.unpack_from(CQE_FORMAT, cq, cq_off.cqes + 16 * (head & cq_mask))
            return res != -errno.EINVAL
        finally:
            for m in maps:
                m.close()
            os.close(fd)

    def supported_opcodes(self, fd: int) -> list[int]:
        probe = self.ffi.new("struct io_uring_probe *", {"ops": PROBE_OPS})
        rc = self.libc.syscall(
            SYS_IO_URING_REGISTER, self.ffi.cast("int", fd), self.ffi.cast("unsigned", IORING_REGISTER_PROBE),
            probe, self.ffi.cast("unsigned", PROBE_OPS),
        )
        if rc < 0:
            raise OSError(self.ffi.errno, os.strerror(self.ffi.errno), "IORING_REGISTER_PROBE")
        return [probe.ops[i].op for i in range(probe.ops_len) if probe.ops[i].flags & IO_URING_OP_SUPPORTED]


def read_io_uring_disabled() -> int | None:
    """kernel.io_uring_disabled: 0 all may use it, 1 only CAP_SYS_ADMIN or io_uring_group, 2 nobody."""
    try:
        return int(open("/proc/sys/kernel/io_uring_disabled").read())
    except (OSError, ValueError):
        return None  # kernels before 6.6 have no such switch


def _status_field(name: str) -> str | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key == name:
                    return value.strip()
    except OSError:
        pass
    return None


def read_seccomp_mode() -> int | None:
    """0 none, 1 strict, 2 filter (a filter such as Docker's default profile can block io_uring)."""
    value = _status_field("Seccomp")
    return int(value) if value is not None else None


def has_cap_ipc_lock() -> bool | None:
    value = _status_field("CapEff")
    return bool(int(value, 16) >> CAP_IPC_LOCK & 1) if value is not None else None


def read_memlock_limit() -> dict[str, int | None]:
    """RLIMIT_MEMLOCK in bytes (null = unlimited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    unlimited = resource.RLIM_INFINITY
    return {"soft": None if soft == unlimited else soft, "hard": None if hard == unlimited else hard}


def feature_names(features: int) -> list[str]:
    return [
        FEATURES[bit] if bit < len(FEATURES) else f"bit{bit}"
        for bit in range(32) if features >> bit & 1
    ]


def _socket_option_missing(name: str) -> str | None:
    """None if setsockopt(name, 1) works on a TCP socket here, else why not."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, SOCKET_OPTIONS[name], 1)
    except OSError as exc:
        return f"setsockopt({name}) on a TCP socket fails: {exc.strerror}"
    return None


def _need_missing(need: str, supported: list[int]) -> str | None:
    if need in SOCKET_OPTIONS:
        return _socket_option_missing(need)
    if need not in OPCODES:
        return f"zcb_modes.h names an unknown need {need!r}"
    return None if OPCODES[need] in supported else f"this kernel lacks IORING_OP_{need}"


def mode_support(supported: list[int] | None, unusable: str | None = None) -> dict[str, dict]:
    """Each send mode of the server -> {"supported", "unsupported" (why not, or None)}, from the
    opcodes this kernel supports and the socket options it accepts."""
    modes = {}
    for arm in arms.server_modes():
        if supported is None:
            why = unusable or "io_uring not probed"
        else:
            why = next((m for m in (_need_missing(need, supported) for need in arm.needs) if m), None)
            if why:
                why += f" (needs Linux {arm.kernel}+)"
        modes[arm.name] = {"supported": why is None, "unsupported": why}
    return modes


def _flag_accepted(kernel: _Kernel, flags: int) -> bool:
    fd, _ = kernel.setup(2, flags)
    if fd >= 0:
        os.close(fd)
    return fd >= 0


def _ring_facts(kernel: _Kernel) -> dict:
    """Facts that need a ring: created once with no flags, then once per setup flag tried."""
    fd, features = kernel.setup(2, 0)
    if fd < 0:
        return {"usable": False, "setup_errno": -fd, "error": f"io_uring_setup: {os.strerror(-fd)}"}
    try:
        supported = kernel.supported_opcodes(fd)
    finally:
        os.close(fd)
    send_zc = OPCODES["SEND_ZC"] in supported
    report_usage = kernel.send_zc_flags_accepted(IORING_SEND_ZC_REPORT_USAGE) if send_zc else False
    return {
        "usable": True,
        "setup_errno": 0,
        "error": None,
        "features": feature_names(features),
        "last_opcode": max(supported, default=None),
        "opcodes": {name: code in supported for name, code in OPCODES.items()},
        "supported_opcodes": supported,
        "send_zc": send_zc,
        # 6.0/6.1 have SEND_ZC without it: the server runs the zc arms without asking, and the
        # share of zero-copy sends the kernel copied anyway is unknown.
        "send_zc_report_usage": report_usage,
        "zc_copied_share": "reported" if report_usage else "unknown",
        "sendmsg_zc": OPCODES["SENDMSG_ZC"] in supported,
        "modes": mode_support(supported),
        "setup_flags": {
            "SINGLE_ISSUER": _flag_accepted(kernel, IORING_SETUP_SINGLE_ISSUER),
            "DEFER_TASKRUN": _flag_accepted(kernel, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN),
        },
    }


def probe() -> dict:
    """Everything above as one JSON-ready dict; never raises."""
    cap_ipc_lock = has_cap_ipc_lock()
    facts = {
        "kernel_release": os.uname().release,
        "io_uring_disabled": read_io_uring_disabled(),
        "seccomp_mode": read_seccomp_mode(),
        "cap_ipc_lock": cap_ipc_lock,
        # ZC sends charge memlock to the ring creator unless it holds CAP_IPC_LOCK.
        "zc_charged_to_memlock": None if cap_ipc_lock is None else not cap_ipc_lock,
        "memlock_limit": read_memlock_limit(),
    }
    try:
        facts.update(_ring_facts(_Kernel()))
    except ImportError as exc:
        facts.update(usable=None, error=f"cffi is not installed ({exc}); ring not probed")
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not crash its caller
        facts.update(usable=None, error=f"{type(exc).__name__}: {exc}")
    if facts.get("usable") is False and facts.get("seccomp_mode") == 2:
        facts["error"] += " (a seccomp filter is active: e.g. Docker's default profile blocks io_uring)"
    if "modes" not in facts:
        facts["modes"] = mode_support(None, f"io_uring unusable: {facts.get('error')}")
    return facts


if __name__ == "__main__":
    print(json.dumps(probe(), indent=2))
