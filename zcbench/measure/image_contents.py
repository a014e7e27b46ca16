"""What is inside the images a run used, recorded at run time: each image's origin (Debian
suite, mirror, debootstrap and archive dates), its key package versions, the server binary's
--version, and its full package list copied into the run directory (core.rundir).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import docker.errors

from zcbench.core import rundir
from zcbench.core.rundir import KEY_PACKAGES, parse_packages
from zcbench.measure.containers import ROLE_LABEL, RUN_LABEL
from zcbench.measure.images import DEBIAN_LABELS, PACKAGES_FILE, TAGS


#: Where a server image may hold zcb-server; the first found is recorded and asked for its
#: `--version` (the manifest's image_contents.server.server_version).
SERVER_BINARIES = ("/usr/local/bin/zcb-server", "/zcb-server")


def read_image_files(client, image: str, paths, run_id: str) -> dict[str, bytes | None]:
    """Path -> bytes of each file in an image (None when absent), through one container that
    is created but never started (works for FROM scratch images) and removed at once."""
    container = client.containers.create(image, labels={RUN_LABEL: run_id, ROLE_LABEL: "inspect"},
                                         network_disabled=True)
    found: dict[str, bytes | None] = {}
    try:
        for path in paths:
            try:
                stream, _ = container.get_archive(path)
            except docker.errors.NotFound:
                found[path] = None
                continue
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.next()
                found[path] = tar.extractfile(member).read() if member and member.isfile() else None
    finally:
        container.remove(force=True)
    return found


def parse_server_version(text: str) -> dict[str, str]:
    """`zcb-server --version` output ("key: value" lines after the name) -> {key: value}."""
    return {key.strip(): value.strip() for key, sep, value in (line.partition(":") for line in text.splitlines())
            if sep and key.strip()}


def server_version(client, image: str, binary: str, run_id: str) -> dict:
    """What `BINARY --version` prints inside `image` (commit, compiler, liburing, flags), run in
    a throwaway container without network that is removed at once; {"error": ...} when it
    cannot be run or says nothing."""
    try:
        container = client.containers.create(image, ["--version"], entrypoint=[binary], network_disabled=True,
                                             labels={RUN_LABEL: run_id, ROLE_LABEL: "version"})
    except docker.errors.APIError as exc:
        return {"error": f"cannot create a container to run {binary} --version: {exc}"}
    try:
        container.start()
        status = container.wait(timeout=30).get("StatusCode")
        out = container.logs(stdout=True, stderr=False).decode(errors="replace")
    except Exception as exc:  # noqa: BLE001 - recorded in the manifest, the run goes on
        return {"error": f"{binary} --version failed: {type(exc).__name__}: {exc}"}
    finally:
        container.remove(force=True)
    version = parse_server_version(out)
    if status != 0 or "commit" not in version:
        return {"error": f"{binary} --version exited {status}: {out.strip()[:200]!r}"}
    return version


def image_contents(client, name: str, image_id: str, run_id: str) -> tuple[dict, str | None]:
    """(what the manifest records of image `name`, its package list text or None)."""
    image = client.images.get(image_id)
    labels = image.labels or {}
    # `built`: the Dockerfiles' apt-get took the suite's updates as of this day
    entry = {"tag": TAGS[name], "id": image_id, "built": image.attrs.get("Created"),
             **{label.removeprefix("zcbench.debian."): labels.get(label) for label in DEBIAN_LABELS.values()}}
    binaries = SERVER_BINARIES if name == "server" else ()
    files = read_image_files(client, image_id, (PACKAGES_FILE, *binaries), run_id)
    if binaries:
        entry["server_binary"] = next((b for b in binaries if files[b] is not None), None)
        entry["server_version"] = (server_version(client, image_id, entry["server_binary"], run_id)
                                   if entry["server_binary"] else None)
    raw = files[PACKAGES_FILE]
    if raw is None:
        entry["error"] = f"no {PACKAGES_FILE} in the image (built before zcbench recorded it): run `invoke build`"
        return entry, None
    packages = parse_packages(raw.decode())
    entry.update(packages=len(packages), key_packages={p: packages.get(p) for p in KEY_PACKAGES if p in packages})
    return entry, raw.decode()


def record_image_contents(client, image_ids: dict[str, str], run_dir: Path, run_id: str) -> dict:
    """Copy the package list of every image a run uses into RUN_DIR/images/NAME.packages.txt;
    return per image its origin (Debian suite, mirror, debootstrap and archive dates), key
    package versions and the list's file, for the manifest."""
    record = {}
    for name, image_id in image_ids.items():
        entry, text = image_contents(client, name, image_id, run_id)
        if text is not None:
            entry["packages_file"] = rundir.write_package_list(run_dir, name, text)
        record[name] = entry
    return record
