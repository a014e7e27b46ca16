"""Images on every host of an inventory, without a registry: built once here, then streamed to
each remote engine over its Docker connection (`docker save` here, `docker load` there), skipping
a host whose image id already matches.

A remote engine is reached through the Docker SDK's ssh:// transport with the system's ssh
client (`use_ssh_client`), so the login is the one your ~/.ssh/config (keys, known hosts, jump
hosts) gives; the remote runs `docker system dial-stdio`, so the login user must be able to use
the engine (root, the `docker` group, or DOCKER_HOST set for the session).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import docker

from zcbench.host.engines import EngineUnreachable, host_client
from zcbench.host.inventory import Host, Inventory
from zcbench.measure.images import TAGS

# which images a host needs for its part in the bench
IMAGES_BY_GROUP = {"server": ("server", "nginx"), "loadgen": ("loadgen",)}


class HostImagesError(EngineUnreachable):
    """A host's engine cannot be reached or refused an image; one line for the user."""


@dataclass(frozen=True)
class Transfer:
    host: str
    name: str
    image_id: str
    sent: bool  # False: the host had this very image already
    seconds: float
    bytes: int = 0


def images_for(host: Host, names: Iterable[str]) -> list[str]:
    """The images of `names` the host needs for its groups, in `names` order."""
    needed = {image for group in host.groups for image in IMAGES_BY_GROUP[group]}
    return [name for name in names if name in needed]


def image_id_on(client, tag: str) -> str | None:
    """The id of the image `tag` on that engine, or None."""
    try:
        return client.images.get(tag).id
    except docker.errors.ImageNotFound:
        return None


def send_image(local, remote, host: str, name: str) -> Transfer:
    """Make `remote` hold the local image `name` (same id), unless it already does."""
    tag = TAGS[name]
    started = time.monotonic()
    local_id = image_id_on(local, tag)
    if local_id is None:
        raise HostImagesError(f"{tag} is not built here: run `invoke build` first")
    if image_id_on(remote, tag) == local_id:
        return Transfer(host, name, local_id, False, time.monotonic() - started)
    # through a file: the engine then gets a sized body, not a chunked stream (Docker 20.10
    # mis-reads some chunked uploads)
    with tempfile.TemporaryFile(prefix="zcbench-image-") as archive:
        for chunk in local.images.get(tag).save(named=True):
            archive.write(chunk)
        size = archive.tell()
        archive.seek(0)
        remote.images.load(archive)
    remote_id = image_id_on(remote, tag)
    if remote_id != local_id:
        raise HostImagesError(f"{host}: loaded {tag} but it has id {remote_id}, not {local_id}")
    return Transfer(host, name, local_id, True, time.monotonic() - started, size)


def distribute(inventory: Inventory, names: Iterable[str], local=None,
               log: Callable[[str], None] = print, client_for=host_client) -> list[Transfer]:
    """Every remote host of the inventory gets the images its groups need."""
    names = list(names)
    transfers = []
    for host in inventory.hosts:
        if host.is_control:
            continue  # built here already
        wanted = images_for(host, names)
        if not wanted:
            continue
        local = local or host_client(Host("localhost", (), {"ansible_connection": "local"}))
        remote = client_for(host)
        try:
            for name in wanted:
                transfer = send_image(local, remote, host.name, name)
                log(f"{host.name:16} {TAGS[name]:28} "
                    + (f"sent {transfer.bytes / 1e6:.0f} MB in {transfer.seconds:.1f} s" if transfer.sent
                       else "up to date") + f"  {transfer.image_id[7:19]}")
                transfers.append(transfer)
        finally:
            remote.close()
    return transfers


def image_ids_per_host(inventory: Inventory, names: Iterable[str] = tuple(TAGS), client_for=host_client) -> dict:
    """{host: {image name: id or None}} for the images each host needs (the run manifest's record)."""
    names = list(names)
    ids = {}
    for host in inventory.hosts:
        client = client_for(host)
        try:
            ids[host.name] = {name: image_id_on(client, TAGS[name]) for name in images_for(host, names)}
        finally:
            client.close()
    return ids
