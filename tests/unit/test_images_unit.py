"""Image inputs without Docker: apt sources of the host, content hashes, build contexts."""

import time
from concurrent.futures import ThreadPoolExecutor

from zcbench.core import rundir
from zcbench.measure import image_contents, images, rootfs


def write_apt(tmp_path, files):
    (tmp_path / "sources.list.d").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_deb822_and_one_line_sources(tmp_path):
    etc = write_apt(tmp_path, {
        "sources.list.d/debian.sources": (
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
            "Components: main contrib\n\n"
            "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
            "Components: main\n\n"
            "Types: deb\nURIs: http://off.example/\nSuites: bookworm\nEnabled: no\n"),
        "sources.list.d/other.list": "deb [arch=amd64] https://third.example/apt stable main\n",
        "sources.list.d/disabled.list.disabled": "deb http://never.example/ bookworm main\n",
    })
    mirror, sources = rootfs.debian_sources("bookworm", etc)
    assert mirror == "http://mirror.example/debian"
    text = rootfs.sources_list_text(sources)
    assert text.splitlines() == [
        "deb http://mirror.example/debian bookworm main contrib",
        "deb http://mirror.example/debian bookworm-updates main contrib",
        "deb http://mirror.example/debian-security bookworm-security main",
    ]
    assert "third.example" not in text and "off.example" not in text and "never" not in text


def test_one_line_sources_list(tmp_path):
    etc = write_apt(tmp_path, {"sources.list": "# comment\ndeb http://m.example/debian bookworm main\n"
                                              "deb-src http://m.example/debian bookworm main\n"})
    mirror, sources = rootfs.debian_sources("bookworm", etc)
    assert mirror == "http://m.example/debian" and len(sources) == 1


def test_no_debian_source_falls_back(tmp_path):
    etc = write_apt(tmp_path, {"sources.list": "deb http://archive.ubuntu.com/ubuntu jammy main\n"})
    mirror, sources = rootfs.debian_sources("bookworm", etc)
    assert mirror == rootfs.FALLBACK_MIRROR
    assert rootfs.sources_list_text(sources) == f"deb {rootfs.FALLBACK_MIRROR} bookworm main\n"


def test_input_hash_changes_with_any_input():
    files = {"Dockerfile": b"FROM x\n", "server/src/a.c": b"int a;\n"}
    base = images.input_hash(files, {"BASE_IMAGE": "b"})
    assert base == images.input_hash(dict(reversed(list(files.items()))), {"BASE_IMAGE": "b"})
    assert base != images.input_hash({**files, "server/src/a.c": b"int b;\n"}, {"BASE_IMAGE": "b"})
    assert base != images.input_hash({**files, "server/src/b.c": b""}, {"BASE_IMAGE": "b"})
    assert base != images.input_hash(files, {"BASE_IMAGE": "c"})


def test_server_context_has_sources_but_no_build_outputs():
    files = images._context_files("server")
    assert "Dockerfile" in files and "server/Makefile" in files
    assert "server/include/zcb_stats.h" in files
    assert any(p.startswith("server/src/") and p.endswith(".c") for p in files)
    assert not any(p.startswith("server/build/") for p in files)


def test_loadgen_context_has_the_lua_script():
    assert "loadgen/report.lua" in images._context_files("loadgen")


def test_context_tar_is_deterministic():
    files = {"Dockerfile": b"FROM x\n", "a": b"1"}
    assert images._context_tar(files).getvalue() == images._context_tar(dict(reversed(files.items()))).getvalue()


def test_tags_are_defined_once_for_every_image():
    assert set(images.BUILT_IMAGES) | {"base"} == set(images.TAGS)


# --- recorded image contents ----------------------------------------------------------------


def test_debootstrap_record_becomes_labels(tmp_path):
    import io
    import tarfile

    env = ("DEBIAN_SUITE=bookworm\nDEBIAN_MIRROR=http://deb.example/debian\n"
           "DEBOOTSTRAP_DATE=2026-12-01T22:50:00Z\nDEBIAN_RELEASE_DATE=Sat, 08 Nov 2026 10:00:00 UTC\n")
    tarball = tmp_path / "rootfs.tar"
    with tarfile.open(tarball, "w") as tar:
        for name, data in (("./etc/os-release", b"ID=debian\n"), ("./" + images.DEBOOTSTRAP_FILE, env.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    labels = images.debian_labels(images.read_debootstrap_env(tarball))
    assert labels == {"zcbench.debian.suite": "bookworm", "zcbench.debian.mirror": "http://deb.example/debian",
                      "zcbench.debian.debootstrap-date": "2026-12-01T22:50:00Z",
                      "zcbench.debian.release-date": "Sat, 08 Nov 2026 10:00:00 UTC"}
    empty = tmp_path / "old.tar"
    with tarfile.open(empty, "w"):
        pass
    assert images.debian_labels(images.read_debootstrap_env(empty)) == {}


def test_every_dockerfile_writes_the_package_list():
    for name in images.BUILT_IMAGES:
        text = (images.IMAGES_DIR / name / "Dockerfile").read_text()
        assert images.PACKAGES_FILE in text and "dpkg-query" in text, name
    # the server's final stage is FROM scratch: its list must be copied from the builder
    server = (images.IMAGES_DIR / "server" / "Dockerfile").read_text().split("FROM scratch", 1)[1]
    assert f"COPY --from=builder {images.PACKAGES_FILE}" in server


class FakeImage:
    def __init__(self, labels):
        self.labels = labels
        self.attrs = {"Created": "2026-12-01T23:00:00Z"}


class FakeArchiveContainer:
    """get_archive like Docker's: a tar of the one path, NotFound when absent."""

    def __init__(self, files, removed, entrypoint=None, command=None):
        self.files, self.removed = files, removed
        self.run = (entrypoint or [None])[0], command

    # a started container "runs" its entrypoint: a file holding b"#!version\n<output>" prints
    # <output> and exits 0; anything else exits 127 with nothing on stdout
    def start(self):
        binary, _ = self.run
        body = self.files.get(binary, b"")
        self.output, self.status = (body[len(b"#!version\n"):], 0) if body.startswith(b"#!version\n") else (b"", 127)

    def wait(self, timeout=None):
        return {"StatusCode": self.status}

    def logs(self, stdout=True, stderr=True):
        return self.output

    def get_archive(self, path):
        import io
        import tarfile

        import docker.errors

        if path not in self.files:
            raise docker.errors.NotFound("no such file")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(path.rsplit("/", 1)[-1])
            info.size = len(self.files[path])
            tar.addfile(info, io.BytesIO(self.files[path]))
        return [buf.getvalue()], {}

    def remove(self, force=False):
        self.removed.append(True)


class FakeClient:
    def __init__(self, files_by_image, labels):
        self.removed, self.created = [], []
        outer = self

        class Images:
            def get(self, image_id):
                return FakeImage(labels)

        class Containers:
            def create(self, image, command=None, **kwargs):
                outer.created.append(kwargs["labels"])
                return FakeArchiveContainer(files_by_image[image], outer.removed, kwargs.get("entrypoint"), command)

        self.images, self.containers = Images(), Containers()


def test_record_image_contents_copies_lists_and_names_key_versions(tmp_path):
    server_list = b"gcc=4:12.2.0-3\nlibc6=2.36-9\nliburing-dev=2.3-3\nlinux-libc-dev=6.1.119-1\nmake=4.3-4.1\n"
    client = FakeClient({"sha256:srv": {images.PACKAGES_FILE: server_list, "/zcb-server": b"\x7fELF"},
                         "sha256:old": {}},
                        {"zcbench.debian.suite": "bookworm", "zcbench.debian.debootstrap-date": "2026-12-01"})
    record = image_contents.record_image_contents(client, {"server": "sha256:srv", "loadgen": "sha256:old"}, tmp_path, "r1")
    server = record["server"]
    assert server["suite"] == "bookworm" and server["debootstrap-date"] == "2026-12-01"
    assert server["built"] == "2026-12-01T23:00:00Z"
    assert server["key_packages"] == {"libc6": "2.36-9", "linux-libc-dev": "6.1.119-1",
                                      "liburing-dev": "2.3-3", "gcc": "4:12.2.0-3"}
    assert server["packages"] == 5 and server["server_binary"] == "/zcb-server"
    assert (tmp_path / server["packages_file"]).read_bytes() == server_list
    assert "run `invoke build`" in record["loadgen"]["error"] and "packages_file" not in record["loadgen"]
    assert rundir.read_package_lists(tmp_path) == {"server": rundir.parse_packages(server_list.decode())}
    # the binary is no zcb-server that answers --version: said so, not guessed
    assert "exited 127" in server["server_version"]["error"]
    # one inspection container per image and one --version run, labelled with the run, removed again
    assert len(client.created) == 3 == len(client.removed)
    assert all(labels["zcbench.run"] == "r1" for labels in client.created)


VERSION_OUTPUT = (b"zcb-server\ncommit: 66038cb95103\ncompiler: gcc 12.2.0\nliburing: 2.3\n"
                  b"flags: -O2 -g -Wall -static\n")


def test_server_version_is_asked_of_the_binary_in_a_throwaway_container(tmp_path):
    client = FakeClient({"sha256:srv": {images.PACKAGES_FILE: b"gcc=12\n",
                                        "/zcb-server": b"#!version\n" + VERSION_OUTPUT}}, {})
    record = image_contents.record_image_contents(client, {"server": "sha256:srv"}, tmp_path, "r2")
    assert record["server"]["server_version"] == {"commit": "66038cb95103", "compiler": "gcc 12.2.0",
                                                  "liburing": "2.3", "flags": "-O2 -g -Wall -static"}
    assert [labels["zcbench.role"] for labels in client.created] == ["inspect", "version"]
    assert len(client.removed) == 2


def test_server_version_without_a_binary_is_none(tmp_path):
    client = FakeClient({"sha256:srv": {images.PACKAGES_FILE: b"gcc=12\n"}}, {})
    record = image_contents.record_image_contents(client, {"server": "sha256:srv"}, tmp_path, "r3")
    assert record["server"]["server_binary"] is None and record["server"]["server_version"] is None
    assert len(client.created) == 1 == len(client.removed)


def test_parse_server_version_keeps_colons_in_values():
    parsed = image_contents.parse_server_version("zcb-server\ncommit: abc\nflags: -DX='\"a:b\"'\n")
    assert parsed == {"commit": "abc", "flags": "-DX='\"a:b\"'"}


def test_git_commit_names_this_checkout():
    import re
    import subprocess

    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=images.ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()
    commit = images.git_commit()
    assert re.fullmatch(r"[0-9a-f]{12}(-dirty)?", commit) and commit.startswith(head)


def test_the_commit_reaches_the_server_build_but_not_the_input_hash(monkeypatch):
    dockerfile = (images.IMAGES_DIR / "server" / "Dockerfile").read_text()
    assert "ARG GIT_COMMIT" in dockerfile and 'GIT_COMMIT="${GIT_COMMIT}"' in dockerfile
    digest = images.input_hash(images._context_files("server"), {"BASE_IMAGE": "base:x", "base_id": "sha256:b"})
    built = []

    class Image:
        id, labels = "sha256:srv", {images.LABEL_HASH: digest}

    class Client:
        class images:  # noqa: N801 - docker's attribute name
            get = staticmethod(lambda tag: Image())

    monkeypatch.setattr(images, "_run_build", lambda *args, **kw: built.append(args[3]) or "sha256:new")
    for commit in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):  # another commit, same sources: no rebuild
        monkeypatch.setattr(images, "git_commit", lambda c=commit: c)
        assert not images.build_image(Client(), "server", "base:x", "sha256:b", {}, log=lambda _: None).built
    Image.labels = {images.LABEL_HASH: "stale"}
    monkeypatch.setattr(images, "_remove_replaced", lambda *args: None)
    assert images.build_image(Client(), "server", "base:x", "sha256:b", {}, log=lambda _: None).built
    assert built == [{"BASE_IMAGE": "base:x", "GIT_COMMIT": "bbbbbbbbbbbb"}]


def test_a_rootfs_being_made_is_waited_for_not_made_twice(tmp_path, monkeypatch):
    """bootstrap.sh makes the rootfs in the background while it provisions; the image build that
    follows waits for it (one rootfs made per machine at a time) and then only uses it."""
    monkeypatch.setattr(rootfs, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(rootfs, "ROOTFS_LOCK", tmp_path / "rootfs.lock")
    monkeypatch.setattr(rootfs, "base_inputs", lambda suite: ("d1", "http://mirror", "deb ..."))
    monkeypatch.setattr(rootfs.os, "geteuid", lambda: 0)
    made = []

    def make_rootfs(tarball, *args):
        made.append(tarball)
        time.sleep(0.3)
        tarball.write_bytes(b"rootfs")
    monkeypatch.setattr(rootfs, "_make_rootfs", make_rootfs)

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(images.build_rootfs, lambda line: None)
        time.sleep(0.05)
        second = pool.submit(images.build_rootfs, lambda line: None)
        assert first.result(timeout=10) == second.result(timeout=10) == tmp_path / "base-bookworm-d1.tar"
    assert made == [tmp_path / "base-bookworm-d1.tar"]  # made once, by the first


def test_the_rootfs_needs_the_standard_library_alone():
    """bootstrap.sh starts it with the system's Python before the environment exists: with no
    site-packages at all (-S), the module imports and computes its inputs."""
    import subprocess
    import sys

    from zcbench.core.paths import ROOT

    done = subprocess.run([sys._base_executable, "-S", "-c",
                           "import zcbench.measure.rootfs as r; print(r.base_inputs()[0])"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == rootfs.base_inputs()[0]
