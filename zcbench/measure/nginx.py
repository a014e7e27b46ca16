"""The nginx reference's configuration: the same response bytes as zcb-server's at every size,
one worker per server CPU, pinned, keep-alive without limits (DESIGN "Measuring honestly": the
reference server must be fair). containers.start_nginx runs it with this config.
"""

from __future__ import annotations

import string
from pathlib import Path

from zcbench.core.paths import ROOT

NGINX_TEMPLATE = ROOT / "images" / "nginx" / "nginx.conf.template"
BODY_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"  # zcb-server's body pattern (response.c)


def nginx_header_length(body_length: int) -> int:
    """Bytes of nginx's 200 response head for this config (Date has a fixed width)."""
    head = ("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 22 Nov 2026 05:30:00 GMT\r\n"
            "Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n")
    return len(head.format(body_length))


def nginx_body_length(response_size: int) -> int:
    """Body bytes so nginx's whole response is `response_size`, or as close as it can be."""
    body = max(0, response_size - nginx_header_length(0))
    while body > 0 and nginx_header_length(body) + body > response_size:
        body -= 1
    return body


def body_bytes(length: int) -> bytes:
    return (BODY_ALPHABET * (length // len(BODY_ALPHABET) + 1))[:length].encode()


#: Longest body nginx answers from memory with `return 200 "..."`. nginx's config parser reads
#: 4096-byte buffers and rejects a longer token ("too long parameter"); 4000 leaves room for the
#: quotes and the directive. A longer body is served from a file with sendfile (page cache, no
#: read() + copy per request), the closest stock nginx gets to "from memory" for it.
NGINX_RETURN_BODY_MAX = 4000
NGINX_BODY_FILE = "body"


def nginx_answers_from_memory(response_size: int) -> bool:
    return nginx_body_length(response_size) <= NGINX_RETURN_BODY_MAX


def nginx_cpu_affinity(cpus) -> str:
    """worker_cpu_affinity masks, one per worker: worker i on cpus[i] (the mask's rightmost digit is CPU 0)."""
    return " ".join("1" + "0" * int(cpu) for cpu in cpus)


def render_nginx_config(*, port: int, bind: str, response_size: int, nofile: int, cpus) -> tuple[str, bytes | None]:
    """(nginx.conf, the body file's bytes or None when the body is a `return` string)."""
    cpus = list(cpus)
    body = body_bytes(nginx_body_length(response_size))
    if nginx_answers_from_memory(response_size):
        # The alphabet has no quote, backslash or '$': the string is literal, nginx sends it as is.
        answer, body_file = f'return 200 "{body.decode()}";', None
    else:
        # add_header with an empty Last-Modified drops the header, so both modes send the same head.
        answer, body_file = f'try_files /{NGINX_BODY_FILE} =404;\n            add_header Last-Modified "";', body
    conf = string.Template(NGINX_TEMPLATE.read_text()).substitute(
        port=port, bind=bind, nofile=nofile, worker_connections=min(nofile - 64, 65536),
        workers=len(cpus), cpu_affinity=nginx_cpu_affinity(cpus), answer=answer)
    return conf, body_file


def write_nginx_config(directory: Path, *, port: int, bind: str, response_size: int, nofile: int,
                       cpus=(0,)) -> dict:
    """Render nginx.conf (+ the body file when needed) into `directory`; return what differs from zcb-server."""
    conf, body_file = render_nginx_config(port=port, bind=bind, response_size=response_size, nofile=nofile, cpus=cpus)
    www = directory / "www"
    www.mkdir(parents=True, exist_ok=True)
    # nginx's workers run as nobody: they must be able to reach the body (mkdtemp makes 0700).
    directory.chmod(0o755)
    www.chmod(0o755)
    (www / NGINX_BODY_FILE).unlink(missing_ok=True)  # the work dir is shared by a run's cells
    if body_file is not None:
        (www / NGINX_BODY_FILE).write_bytes(body_file)
    (directory / "nginx.conf").write_text(conf)
    return nginx_reference_info(response_size)


def nginx_reference_info(response_size: int) -> dict:
    """How the nginx reference's response differs from zcb-server's at this size."""
    body = nginx_body_length(response_size)
    total = nginx_header_length(body) + body
    source = ("from memory (return 200 with the body as a literal string)"
              if nginx_answers_from_memory(response_size) else
              f"from a file with sendfile on (a body over {NGINX_RETURN_BODY_MAX} B is too long for "
              "nginx's config parser as a return string)")
    return {"response_size": total, "body_bytes": body,
            "answers": "memory" if nginx_answers_from_memory(response_size) else "sendfile",
            "differs": "adds Server, Date and Connection headers (the body is shortened to keep the "
                       f"total size); one worker per server CPU, pinned; answers {source}"
                       + ("" if total == response_size else
                          f"; total {total} B, not {response_size} B: nginx's own head is longer")}
