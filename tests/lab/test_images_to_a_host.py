"""`invoke build -i`: images reach a second host's own engine over SSH without a registry, once."""

from __future__ import annotations

import docker
import pytest
import yaml

from zcbench.host import engines
from zcbench.measure import host_images
from zcbench.host import inventory as hosts
from zcbench.host import lab as lab_mod
from zcbench.measure.images import TAGS

pytestmark = [pytest.mark.lab, pytest.mark.docker]  # docker: needs this machine's images


def test_the_server_image_reaches_the_server_host_once_and_keeps_its_id(lab, tmp_path):
    # the SDK runs the plain `ssh` client: the lab's ssh_config.d file gives it key and user
    local = docker.from_env()
    try:
        local.images.get(TAGS["server"])
    except docker.errors.ImageNotFound:
        pytest.fail("zcbench/server is not built here: run `invoke build` first")
    # this machine generates load, the lab host serves
    inventory_file = tmp_path / "two-hosts.yml"
    inventory_file.write_text(yaml.safe_dump({"all": {"children": {
        "server": {"hosts": {"lab": lab_mod.lab_host_vars(lab)}},
        "loadgen": {"hosts": {"localhost": {"ansible_connection": "local"}}}}}}))
    inventory = hosts.load_inventory(inventory_file)
    lab_engine = docker.DockerClient(base_url=lab.docker_url_here())
    try:
        assert lab_engine.images.list() == []
        first = host_images.distribute(inventory, ["server", "loadgen"], local=local, log=lambda _: None)
        assert [(t.host, t.name, t.sent) for t in first] == [("lab", "server", True)]  # loadgen stays here
        assert lab_engine.images.get(TAGS["server"]).id == local.images.get(TAGS["server"]).id
        assert [t.tags for t in lab_engine.images.list()] == [[TAGS["server"]]]

        again = host_images.distribute(inventory, ["server"], local=local, log=lambda _: None)
        assert [(t.name, t.sent) for t in again] == [("server", False)]

        ids = host_images.image_ids_per_host(inventory, ["server", "loadgen"])
        assert ids["lab"] == {"server": local.images.get(TAGS["server"]).id}
        assert ids["localhost"] == {"loadgen": local.images.get(TAGS["loadgen"]).id}
    finally:
        lab_engine.close()
        local.close()


def test_an_unreachable_engine_is_one_line(tmp_path):
    inventory_file = tmp_path / "hosts.yml"
    inventory_file.write_text(yaml.safe_dump({"all": {"children": {
        "server": {"hosts": {"nowhere": {"ansible_host": "127.0.0.1", "ansible_port": 1,
                                         "ansible_user": "nobody"}}},
        "loadgen": {"hosts": {"localhost": {"ansible_connection": "local"}}}}}}))
    with pytest.raises(engines.EngineUnreachable) as error:
        engines.host_client(hosts.load_inventory(inventory_file).server, timeout=10)
    assert str(error.value).startswith("nowhere: Docker engine at ssh://nobody@127.0.0.1:1 unreachable")
    assert "\n" not in str(error.value)
