"""The response-size sweep (issue 6): where does zero-copy send start to pay on this host?

A sweep is an ordinary bench run whose matrix has several response sizes (the planner
interleaves them with the arms). This module builds its Config and runs it through the bench:
jobs.sweep runs it through the bench. Reading a run's summary as a sweep (the per-size rows and
the crossover per zero-copy arm) is analyze.sweep's, so `invoke report` renders a sweep without
this module.
"""

from __future__ import annotations

from pathlib import Path

from zcbench.core import rundir
from zcbench.measure.config import Config, ConfigError, parse_size_list

DEFAULT_SIZES = "88,512,1k,4k,16k,64k,256k,1m"
DEFAULT_CONNS = "100"
DEFAULT_MODE = "all"
DEFAULT_LABEL = "sweep"

def parse_sizes(text) -> tuple[int, ...]:
    """'88,512,1k,4k,16k,64k,256k,1m' -> byte counts in ascending order (ConfigError if bad)."""
    return tuple(sorted(parse_size_list(text, "--sizes")))


def sweep_config(*, sizes=DEFAULT_SIZES, conns=DEFAULT_CONNS, mode=DEFAULT_MODE,
                 label=DEFAULT_LABEL, **bench_options) -> Config:
    """The bench Config of a sweep: the bench's own validation, several response sizes."""
    byte_sizes = parse_sizes(sizes)
    config = Config.from_args(response_size=",".join(str(s) for s in byte_sizes), conns=conns,
                              mode=mode, label=label, extra={"sweep": {"sizes": list(byte_sizes)}},
                              **bench_options)
    if len(config.rate_shares) > 1:  # its crossover is judged at one load (analyze.sweep)
        raise ConfigError(f"--rate {bench_options.get('rate')}: a sweep runs at one load; give one share, "
                          "or run `invoke bench --rate` with several for latency against load")
    return config


# --- the crossover a later run takes: --zc-min-bytes crossover -------------------------------

#: The zero-copy arm whose crossover an adaptive server switches at: adaptive sends SEND_ZC above
#: its threshold, as this arm does at every size.
ADAPTIVE_FOLLOWS = "zc"


class NoCrossover(ConfigError):
    """No sweep on this host and images found where zero-copy starts to pay; one line."""


def _same_setup(manifest: dict, kernel: str | None, image_ids: dict[str, str]) -> bool:
    """A sweep ran on this kernel with these very images (tag -> id)."""
    host = manifest.get("host") or {}
    recorded = manifest.get("images") or {}
    return (host.get("kernel_release") == kernel
            and all(recorded.get(tag) == image_id for tag, image_id in image_ids.items()))


def sweeps(out: Path) -> list[tuple[Path, dict]]:
    """Every complete sweep under `out`, newest first: (run directory, manifest)."""
    found = []
    for manifest_path in Path(out).glob("*/manifest.json"):
        try:
            manifest = rundir.read_manifest(manifest_path.parent)
        except rundir.RunDirError:
            continue
        if manifest.get("complete") and ((manifest.get("config") or {}).get("extra") or {}).get("sweep"):
            found.append((manifest_path.parent, manifest))
    return sorted(found, key=lambda item: item[1].get("started_at") or "", reverse=True)


def recommended(run_dir: Path, arm: str = ADAPTIVE_FOLLOWS) -> dict | None:
    """The crossover a sweep recommends an adaptive server switch at: its arm's crossover at the
    fewest connections that has one ({"size", "arm", "conns", "run"}), or None."""
    summary = rundir.read_json(Path(run_dir) / rundir.SUMMARY)
    crossovers = [c for c in (summary.get("sweep") or {}).get("crossovers", [])
                  if c.get("arm") == arm and c.get("status") == "crossover"]
    if not crossovers:
        return None
    best = min(crossovers, key=lambda c: c["conns"])
    return {"size": best["size"], "arm": arm, "conns": best["conns"], "run": str(run_dir)}


def latest_crossover(out: Path, kernel: str | None, image_ids: dict[str, str]) -> dict:
    """--zc-min-bytes crossover: what the latest sweep on this kernel and images recommends."""
    for run_dir, manifest in sweeps(out):
        if not _same_setup(manifest, kernel, image_ids):
            continue
        found = recommended(run_dir)
        if found is None:
            raise NoCrossover(f"--zc-min-bytes crossover: the latest sweep on this host and images ({run_dir.name}) "
                              f"found no size where {ADAPTIVE_FOLLOWS} pays: give --zc-min-bytes BYTES")
        return found
    raise NoCrossover(f"--zc-min-bytes crossover: no complete sweep under {out} ran on this kernel with these "
                      "images: run `invoke sweep` first, or give --zc-min-bytes BYTES")
