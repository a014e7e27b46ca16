"""A run killed outright (SIGKILL, a machine restart) cannot remove its containers: the next run
finds them by their owner label and removes them, and leaves a live run's alone."""

from __future__ import annotations

import subprocess
import uuid

from zcbench.measure import containers, images


def _container(client, run_id: str, owner: str):
    return client.containers.create(images.TAGS["loadgen"], ["true"], network_mode="none",
                                    labels={containers.RUN_LABEL: run_id, containers.ROLE_LABEL: "test",
                                            containers.OWNER_LABEL: owner})


def test_the_containers_of_a_run_whose_process_is_gone_are_removed_a_live_ones_kept(docker_client, zcbench_images):
    dead = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    dead_owner = containers.owner().rsplit("/", 1)[0] + f"/{int(dead.stdout)}"  # that shell has exited
    orphan_run, live_run, restarted_run = (f"test-{uuid.uuid4().hex[:8]}" for _ in range(3))
    earlier_boot = f"{containers.owner().split('/')[0]}/an-earlier-boot/1"
    try:
        _container(docker_client, orphan_run, dead_owner)
        _container(docker_client, orphan_run, dead_owner)
        docker_client.volumes.create(f"zcbench-{orphan_run}-work", labels={containers.RUN_LABEL: orphan_run})
        _container(docker_client, restarted_run, earlier_boot)
        _container(docker_client, live_run, containers.owner())

        removed = containers.remove_orphaned_runs(docker_client)

        assert sorted(removed) == sorted([orphan_run, restarted_run]) and len(removed[orphan_run]) == 2
        assert containers.run_containers(docker_client, orphan_run) == []
        assert containers.run_containers(docker_client, restarted_run) == []
        assert docker_client.volumes.list(filters={"label": f"{containers.RUN_LABEL}={orphan_run}"}) == []
        assert len(containers.run_containers(docker_client, live_run)) == 1
    finally:
        for run_id in (orphan_run, live_run, restarted_run):
            containers.remove_run_containers(docker_client, run_id)
        for volume in docker_client.volumes.list(filters={"label": f"{containers.RUN_LABEL}={orphan_run}"}):
            volume.remove(force=True)
