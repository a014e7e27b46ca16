"""The bench's arms: one registry entry per arm, the one place that says what an arm is.

The zcbench server's send modes come from server/include/zcb_modes.h, the same list the C
server is built from (its --send and --list-modes): a mode added there is an arm here, with
no Python change. Arms that are not a send mode of that server are registered below: the
nginx reference and the calibration's arms. Everything else (config's --mode choices, the
plan, the statistics' order, the report's titles, the plots' colours and markers) asks this
module.

    ARMS                the registry, in the order reports list arms
    get(name)           one arm (KeyError with the known names otherwise)
    register(arm)       add an arm (tests add a throwaway one; unregister removes it)
    modes()             --mode choices: each arm beside the baseline it is judged against, "all"
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from zcbench.core.paths import ROOT

MODES_HEADER = ROOT / "server" / "include" / "zcb_modes.h"
BASELINE = "regular"
ZCBENCH = "zcbench"  # the server of the send-mode arms
NGINX = "nginx"
#: The calibration's arms (`invoke calibrate`), all regular sends: a second plain regular arm
#: (the A/A), the pilot's arm whose server adds a large known CPU cost per response, and the
#: dose ladder's arms, each adding its own (MAX_DOSES of them at most).
AA_ARM = "regular-aa"
WORK_ARM = "regular-work"
#: ... and the latency check's arm, whose server stops answering on a known schedule.
STALL_ARM = "regular-stall"
MAX_DOSES = 4

#: Colours and markers handed out in registry order to arms that name none (colour-blind safe).
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c",
           "#ccb974", "#64b5cd")
MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "h")

_ENTRY = re.compile(r'^\s*X\((\w+),\s*"([^"]+)",\s*([01]),\s*([01]),\s*([01]),\s*"([^"]*)",\s*"([^"]*)",'
                    r'\s*"([^"]*)",\s*"([^"]*)"\)')


@dataclass(frozen=True)
class Arm:
    """One arm: what it sends with, how it is judged, how it is shown."""
    name: str
    title: str
    server: str = ZCBENCH  # the server that runs it
    send: str | None = None  # the zcbench server's --send mode (None: another server)
    zero_copy: bool = False
    registered_buffer: bool = False
    user_pages: bool = True  # its bytes come from the server's memory (False: the page cache)
    limit: str = "none"  # what bounds its bytes in flight (memlock, optmem_max, none)
    kernel: str = ""  # the oldest kernel with what it needs
    needs: tuple[str, ...] = ()  # io_uring opcodes and socket options the kernel must offer
    baseline: str | None = BASELINE  # the arm it is judged against (None: it is the baseline)
    calibration: bool = False  # only `invoke calibrate` runs it
    calibration_work: bool = False  # its server gets the calibration's injected work
    calibration_stall: bool = False  # its server stalls on the latency check's schedule
    color: str | None = None
    marker: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def to_json(self) -> dict:
        return {"name": self.name, "title": self.title, "server": self.server, "send": self.send,
                "zero_copy": self.zero_copy, "registered_buffer": self.registered_buffer,
                "user_pages": self.user_pages, "limit": self.limit, "kernel": self.kernel,
                "needs": list(self.needs), "baseline": self.baseline}

    @property
    def copied_share_applies(self) -> bool:
        """Zero-copy from user pages: the kernel may copy them after all (from the page cache
        there is nothing of the user's to pin or copy: splice's share is "n/a")."""
        return self.zero_copy and self.user_pages


def parse_modes_header(text: str) -> list[Arm]:
    """The send modes of zcb_modes.h as arms (the baseline mode is the one named BASELINE)."""
    arms = []
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match:
            _, name, zero_copy, registered, user_pages, limit, kernel, needs, title = match.groups()
            arms.append(Arm(name=name, title=title, send=name, zero_copy=zero_copy == "1",
                            registered_buffer=registered == "1", user_pages=user_pages == "1", limit=limit,
                            kernel=kernel, needs=tuple(needs.split()),
                            baseline=None if name == BASELINE else BASELINE))
    return arms


@lru_cache(maxsize=1)
def server_modes() -> tuple[Arm, ...]:
    """The zcbench server's send modes, read from its header once."""
    arms = tuple(parse_modes_header(MODES_HEADER.read_text()))
    if not any(arm.name == BASELINE for arm in arms):
        raise RuntimeError(f"{MODES_HEADER}: no '{BASELINE}' send mode")
    return arms


def _builtin() -> dict[str, Arm]:
    arms = {arm.name: arm for arm in server_modes()}
    for arm in (
        Arm(NGINX, "nginx", server=NGINX, send=None, limit="none"),
        Arm(AA_ARM, "Regular Send (A/A)", send=BASELINE, calibration=True),
        Arm(WORK_ARM, "Regular Send + injected work", send=BASELINE, calibration=True, calibration_work=True),
        *(Arm(f"regular-dose{i}", f"Regular Send + dose {i}", send=BASELINE, calibration=True, calibration_work=True)
          for i in range(1, MAX_DOSES + 1)),
        Arm(STALL_ARM, "Regular Send + known stalls", send=BASELINE, calibration=True, calibration_stall=True),
    ):
        arms[arm.name] = arm
    return arms


ARMS: dict[str, Arm] = _builtin()


def register(arm: Arm) -> Arm:
    """Add an arm (after the others); ValueError if the name is taken."""
    if arm.name in ARMS:
        raise ValueError(f"arm {arm.name!r} is already registered")
    ARMS[arm.name] = arm
    return arm


def unregister(name: str) -> None:
    ARMS.pop(name, None)


def get(name: str) -> Arm:
    try:
        return ARMS[name]
    except KeyError:
        raise KeyError(f"unknown arm {name!r}; known: {', '.join(ARMS)}") from None


def known(name: str) -> bool:
    return name in ARMS


def order(name: str) -> int:
    """Position in reports (unknown arms last)."""
    return list(ARMS).index(name) if name in ARMS else len(ARMS)


def title(name: str) -> str:
    return ARMS[name].title if name in ARMS else name


def color(name: str) -> str:
    arm = ARMS.get(name)
    if arm and arm.color:
        return arm.color
    return PALETTE[order(name) % len(PALETTE)]


def marker(name: str) -> str:
    arm = ARMS.get(name)
    if arm and arm.marker:
        return arm.marker
    return MARKERS[order(name) % len(MARKERS)]


def send_mode(name: str) -> str:
    """The zcbench server's --send for an arm."""
    send = get(name).send
    if send is None:
        raise ValueError(f"arm {name!r} is not a zcbench send mode")
    return send


def is_zero_copy(name: str) -> bool:
    return name in ARMS and ARMS[name].zero_copy


def zero_copy_arms() -> tuple[str, ...]:
    return tuple(name for name, arm in ARMS.items() if arm.zero_copy)


def bench_arms() -> tuple[str, ...]:
    """The zcbench arms a bench may run (no calibration arm)."""
    return tuple(name for name, arm in ARMS.items()
                 if arm.server == ZCBENCH and not arm.calibration)


def dose_arm(i: int) -> Arm:
    """The calibration's i-th dose arm (1-based)."""
    if not 1 <= i <= MAX_DOSES:
        raise ValueError(f"a calibration has at most {MAX_DOSES} doses")
    return ARMS[f"regular-dose{i}"]


def calibration_arms() -> tuple[str, ...]:
    return tuple(name for name, arm in ARMS.items() if arm.calibration)


def modes() -> dict[str, tuple[str, ...]]:
    """--mode choices -> the zcbench arms they run: the baseline alone, each other arm beside
    the baseline it is judged against, and "all"."""
    bench = bench_arms()
    choices = {BASELINE: (BASELINE,)}
    choices.update({name: (BASELINE, name) for name in bench if name != BASELINE})
    choices["all"] = bench
    return choices


def modes_help() -> str:
    """One line for --mode's help: each mode and what it sends with."""
    return "|".join(modes())
