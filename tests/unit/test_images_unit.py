"""Image inputs without Docker: apt sources of the host, content hashes, build contexts."""

from zcbench import images


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
    mirror, sources = images.debian_sources("bookworm", etc)
    assert mirror == "http://mirror.example/debian"
    text = images.sources_list_text(sources)
    assert text.splitlines() == [
        "deb http://mirror.example/debian bookworm main contrib",
        "deb http://mirror.example/debian bookworm-updates main contrib",
        "deb http://mirror.example/debian-security bookworm-security main",
    ]
    assert "third.example" not in text and "off.example" not in text and "never" not in text


def test_one_line_sources_list(tmp_path):
    etc = write_apt(tmp_path, {"sources.list": "# comment\ndeb http://m.example/debian bookworm main\n"
                                              "deb-src http://m.example/debian bookworm main\n"})
    mirror, sources = images.debian_sources("bookworm", etc)
    assert mirror == "http://m.example/debian" and len(sources) == 1


def test_no_debian_source_falls_back(tmp_path):
    etc = write_apt(tmp_path, {"sources.list": "deb http://archive.ubuntu.com/ubuntu jammy main\n"})
    mirror, sources = images.debian_sources("bookworm", etc)
    assert mirror == images.FALLBACK_MIRROR
    assert images.sources_list_text(sources) == f"deb {images.FALLBACK_MIRROR} bookworm main\n"


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
