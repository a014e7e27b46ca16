"""The images: labelled with the project and their input hash; an unchanged build is a no-op;
the server image holds only the static binary."""

import pytest

from zcbench.measure import images

pytestmark = pytest.mark.docker


def test_every_image_is_labelled_and_a_rebuild_is_a_no_op(docker_client, zcbench_images):
    again = images.ensure_images(docker_client, log=lambda line: None)
    assert {r.name for r in again} == {"base", *images.BUILT_IMAGES}
    assert [r.name for r in again if r.built] == []  # nothing changed: nothing rebuilt
    for r in again:
        labels = docker_client.images.get(r.tag).labels
        assert labels[images.LABEL_PROJECT] == images.PROJECT
        assert labels[images.LABEL_HASH] == r.input_hash
        assert r.image_id == zcbench_images[r.name]


def test_server_image_is_only_the_static_binary(docker_client, zcbench_images):
    image = docker_client.images.get(images.TAGS["server"])
    assert image.attrs["Config"]["Entrypoint"] == ["/zcb-server"]
    # scratch + two files: the binary and its builder's package list; no build tools inside
    assert len(image.attrs["RootFS"]["Layers"]) == 2
    assert image.attrs["Size"] < 10 * 1024 * 1024


def test_require_images_names_invoke_build_when_missing(docker_client):
    saved = dict(images.TAGS)
    images.TAGS["server"] = "zcbench/not-there:never"
    try:
        with pytest.raises(images.ImageError, match="invoke build"):
            images.require_images(docker_client, ["server"])
    finally:
        images.TAGS.clear()
        images.TAGS.update(saved)


def test_base_image_option_uses_the_given_image(docker_client, zcbench_images):
    """--base-image: the named image is used as FROM and no debootstrap base is built; naming
    the image the project built itself must therefore change nothing."""
    results = images.ensure_images(docker_client, ["loadgen"], base_image=images.TAGS["base"],
                                   log=lambda line: None)
    assert [r.name for r in results] == ["loadgen"]
    assert results[0].built is False and results[0].image_id == zcbench_images["loadgen"]
