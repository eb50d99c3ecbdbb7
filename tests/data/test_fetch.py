"""Resumable, verified downloads against a local HTTP server, and safe archive extraction."""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.helpers import can_mount_tmpfs
from unmask.data.fetch import EXTRACTED_MARKER, download, extract
from unmask.errors import DownloadError

PAYLOAD = os.urandom(300_000)
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; honours ``Range`` unless ``server.honour_range`` is False, and cuts the
    connection after ``server.drop_after`` body bytes when that is set."""

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and srv.honour_range:
            start = int(m.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        if srv.drop_after is not None:
            self.wfile.write(rest[: srv.drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(rest)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.files = {"/data.bin": PAYLOAD}
    srv.requests = []
    srv.honour_range = True
    srv.drop_after = None
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_truncated_transfer_keeps_part_and_resumes_with_range(server, tmp_path):
    dest = tmp_path / "data.bin"
    part = tmp_path / "data.bin.part"
    server.drop_after = 100_000
    with pytest.raises(DownloadError, match=r"truncated at 100000 of 300000 bytes"):
        download(server.url + "/data.bin", dest, SHA, progress=False)
    assert not dest.exists() and part.stat().st_size == 100_000

    server.drop_after = None
    assert download(server.url + "/data.bin", dest, SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD and _sha(dest) == SHA and not part.exists()
    assert server.requests[-1] == ("/data.bin", "bytes=100000-")


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(b"\0" * 5000)  # bytes that do not match the payload
    server.honour_range = False
    download(server.url + "/data.bin", dest, SHA, progress=False)
    assert server.requests[-1][1] == "bytes=5000-"  # asked to resume, got a 200 and started over
    assert dest.read_bytes() == PAYLOAD


def test_part_already_complete_is_finished_without_body(server, tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)  # e.g. interrupted between write and rename
    download(server.url + "/data.bin", dest, SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path):
    dest = tmp_path / "data.bin"
    wrong = "0" * 64
    url = server.url + "/data.bin"
    with pytest.raises(DownloadError) as e:
        download(url, dest, wrong, progress=False)
    msg = str(e.value)
    assert url in msg and wrong in msg and SHA in msg and "\n" not in msg
    assert not dest.exists() and not (tmp_path / "data.bin.part").exists()


def test_complete_dest_is_not_downloaded_again(server, tmp_path):
    dest = tmp_path / "data.bin"
    download(server.url + "/data.bin", dest, SHA, progress=False)
    n = len(server.requests)
    download(server.url + "/data.bin", dest, SHA, progress=False)
    assert len(server.requests) == n

    dest.write_bytes(b"stale")  # a corrupt copy is replaced
    download(server.url + "/data.bin", dest, SHA, progress=False)
    assert len(server.requests) == n + 1 and dest.read_bytes() == PAYLOAD


def test_http_errors_and_schemes_are_one_line(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url + "/missing.bin", tmp_path / "x", None, progress=False)
    with pytest.raises(DownloadError, match="unsupported url scheme 'ftp'"):
        download("ftp://example.org/x.zip", tmp_path / "x", None, progress=False)


def test_file_url(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = download(src.as_uri(), tmp_path / "out" / "copy.bin", SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


# --------------------------------------------------------------------------- extract
def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return path


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _zip(path: Path, members: list[tuple[str, bytes]], symlinks: dict[str, str] = {}) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
        for name, target in symlinks.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


GOOD = ("ok/a.txt", b"fine")


@pytest.mark.parametrize("make, member", [
    (lambda p: _tar(p, [GOOD, ("../evil", b"x")]), "../evil"),
    (lambda p: _tar(p, [GOOD, ("/abs/evil", b"x")]), "/abs/evil"),
    (lambda p: _tar(p, [GOOD, _link("ok/escape", "../../outside")]), "ok/escape"),
    (lambda p: _tar(p, [GOOD, _link("ok/abs", "/etc/passwd")]), "ok/abs"),
    (lambda p: _tar(p, [GOOD, _link("ok/hard", "../outside", tarfile.LNKTYPE)]), "ok/hard"),
    (lambda p: _zip(p, [GOOD, ("../evil", b"x")]), "../evil"),
    (lambda p: _zip(p, [GOOD, ("/abs/evil", b"x")]), "/abs/evil"),
    (lambda p: _zip(p, [GOOD], symlinks={"ok/escape": "../../outside"}), "ok/escape"),
])
def test_unsafe_members_are_rejected_before_anything_is_extracted(tmp_path, make, member):
    archive = make(tmp_path / "bad.archive")
    dest = tmp_path / "work" / "out"
    with pytest.raises(DownloadError) as e:
        extract(archive, dest)
    msg = str(e.value)
    assert str(archive) in msg and repr(member) in msg and "\n" not in msg
    assert not dest.exists()
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == []  # no temp dir left either
    assert not (tmp_path / "evil").exists() and not (tmp_path / "outside").exists()


@pytest.mark.parametrize("suffix, mode", [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz")])
def test_extract_tar_keeps_links_that_stay_inside(tmp_path, suffix, mode):
    archive = _tar(tmp_path / f"a{suffix}", [GOOD, _link("ok/b.txt", "a.txt")], mode)
    out = extract(archive, tmp_path / "out")
    assert (out / "ok" / "a.txt").read_bytes() == b"fine"
    assert (out / "ok" / "b.txt").read_bytes() == b"fine"


def test_extract_zip_then_rerun_is_skipped_until_the_archive_changes(tmp_path):
    archive = _zip(tmp_path / "a.zip", [GOOD, ("ok/sub/c.txt", b"c")])
    out = extract(archive, tmp_path / "out")
    assert (out / "ok" / "sub" / "c.txt").read_bytes() == b"c" and (out / EXTRACTED_MARKER).is_file()
    (out / "ok" / "a.txt").unlink()
    extract(archive, out)  # marker matches: nothing redone
    assert not (out / "ok" / "a.txt").exists()
    _zip(archive, [GOOD, ("ok/sub/c.txt", b"changed!")])
    extract(archive, out)
    assert (out / "ok" / "a.txt").exists() and (out / "ok" / "sub" / "c.txt").read_bytes() == b"changed!"


def test_not_an_archive(tmp_path):
    p = tmp_path / "notes.zip"
    p.write_text("hello")
    with pytest.raises(DownloadError, match="not a zip or tar archive"):
        extract(p, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- links, chains and the size cap
CHAIN = ["a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e"]  # each -> "..": a/b/c/d/e ends up 3 levels above


def _zip_link(zf: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def _no_pwned(tmp_path: Path) -> None:
    assert list(tmp_path.rglob("PWNED.txt")) == []


def _nothing_extracted(dest: Path) -> None:
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir()] == []  # no temporary folder left either


def test_zip_symlink_chain_is_refused(tmp_path):
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in CHAIN:
            _zip_link(zf, name, "..")
        zf.writestr("a/b/c/d/e/PWNED.txt", b"pwned")
    dest = tmp_path / "x" / "y" / "z" / "out"
    dest.parent.mkdir(parents=True)
    with pytest.raises(DownloadError) as e:
        extract(archive, dest)
    msg = str(e.value)
    assert msg == f"{archive}: unsafe member 'a/b' (symbolic link)"
    _no_pwned(tmp_path)
    _nothing_extracted(dest)


@pytest.mark.parametrize("make, member, why", [
    # a link made by a non-unix zipper is still a link (the mode bits say so)
    (lambda zf: (zf.writestr(GOOD[0], GOOD[1]), _zip_link(zf, "ok/l", "a.txt")), "ok/l", "symbolic link"),
    (lambda zf: zf.writestr(_special("ok/fifo", stat.S_IFIFO), b""), "ok/fifo", "special file"),
    (lambda zf: zf.writestr(_special("ok/dev", stat.S_IFCHR), b""), "ok/dev", "special file"),
])
def test_zip_links_and_special_members_are_refused(tmp_path, make, member, why):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        make(zf)
    dest = tmp_path / "work" / "out"
    dest.parent.mkdir()
    with pytest.raises(DownloadError) as e:
        extract(archive, dest)
    msg = str(e.value)
    assert msg.startswith(f"{archive}: unsafe member {member!r} (") and why in msg
    _nothing_extracted(dest)


def _special(name: str, kind: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (kind | 0o644) << 16
    return info


def test_tar_symlink_chain_is_refused(tmp_path):
    archive = _tar(tmp_path / "archive.tar", [*(_link(n, "..") for n in CHAIN), ("a/b/c/d/e/PWNED.txt", b"x")])
    dest = tmp_path / "x" / "y" / "z" / "out"
    dest.parent.mkdir(parents=True)
    with pytest.raises(DownloadError) as e:
        extract(archive, dest)
    msg = str(e.value)  # refused by our check, before tarfile's own filter: no "corrupt tar archive"
    assert msg == f"{archive}: unsafe member 'a/b/c' (symlink to '..' points outside the destination)"
    _no_pwned(tmp_path)
    _nothing_extracted(dest)


@pytest.mark.parametrize("members, member", [
    # x stays inside when made; once s -> "." follows, x points one level above the destination
    ([_link("x", "s/t/../.."), _link("s", "."), GOOD], "x"),
    # ... and a later file written through x
    ([_link("x", "s/t/../.."), _link("s", "."), ("x/evil", b"x")], "x/evil"),
])
def test_tar_links_followed_through_earlier_links_are_refused(tmp_path, members, member):
    archive = _tar(tmp_path / "bad.tar", members)
    dest = tmp_path / "work" / "out"
    dest.parent.mkdir()
    with pytest.raises(DownloadError) as e:
        extract(archive, dest)
    assert str(e.value).startswith(f"{archive}: unsafe member {member!r} (")
    _nothing_extracted(dest)
    assert not (tmp_path / "evil").exists()


def test_zip_bomb_over_the_cap_is_refused(tmp_path):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"z/{i}.bin", b"\0" * (1 << 20))  # 3 MiB of zeros in a few KB
    assert archive.stat().st_size < 50_000
    dest = tmp_path / "work" / "out"
    dest.parent.mkdir()
    with pytest.raises(DownloadError) as e:
        extract(archive, dest, max_extract_gb=1 / 1024)  # 1 MiB
    msg = str(e.value)
    assert msg == (f"{archive}: members declare 3 MiB uncompressed, over the 1 MiB extraction cap "
                   f"(data.url.max_extract_gb = 0.000976562)")
    _nothing_extracted(dest)
    assert extract(archive, dest, max_extract_gb=3 / 1024) == dest  # exactly the cap: fine
    assert (dest / "z" / "2.bin").stat().st_size == 1 << 20


def test_tar_over_the_cap_is_refused(tmp_path):
    archive = _tar(tmp_path / "big.tar.gz", [("f/a", b"\0" * 600_000), ("f/b", b"\0" * 600_000)], "w:gz")
    dest = tmp_path / "work" / "out"
    dest.parent.mkdir()
    with pytest.raises(DownloadError, match=r"over the 1 MiB extraction cap \(data.url.max_extract_gb") as e:
        extract(archive, dest, max_extract_gb=1 / 1024)
    assert str(archive) in str(e.value)
    _nothing_extracted(dest)


def test_zip_cap_is_enforced_while_writing(tmp_path, monkeypatch):
    """Declared sizes can lie: the bytes actually written are counted too."""
    from unmask.data import fetch

    archive = _zip(tmp_path / "liar.zip", [("f/a", b"\0" * 700_000), ("f/b", b"\0" * 700_000)])
    monkeypatch.setattr(fetch._Budget, "check_declared", lambda self, total: None)
    dest = tmp_path / "work" / "out"
    dest.parent.mkdir()
    with pytest.raises(DownloadError) as e:
        extract(archive, dest, max_extract_gb=1 / 1024)
    assert str(e.value) == (f"{archive}: unpacks to more than the cap at member 'f/b', over the 1 MiB "
                            f"extraction cap (data.url.max_extract_gb = 0.000976562)")
    _nothing_extracted(dest)


def test_extract_cap_default_and_config():
    import inspect

    from unmask.config import UrlSource, parse_params
    from unmask.data.fetch import DEFAULT_MAX_EXTRACT_GB
    from unmask.errors import ConfigError

    assert UrlSource().max_extract_gb == DEFAULT_MAX_EXTRACT_GB == 20.0
    assert inspect.signature(extract).parameters["max_extract_gb"].default == DEFAULT_MAX_EXTRACT_GB
    assert parse_params({"data": {"url": {"max_extract_gb": 0.5}}}).data.url.max_extract_gb == 0.5
    for bad in (0, -1, "lots", float("inf")):
        with pytest.raises(ConfigError, match=r"data\.url\.max_extract_gb") as e:
            parse_params({"data": {"url": {"max_extract_gb": bad}}})
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="max_extract_gb"):
        extract(Path("unused.zip"), Path("unused"), max_extract_gb=0)


# --------------------------------------------------------------------------- duplicates and a full disk (issue 16)
def _zip_with_duplicate(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("faces/a.png", b"first photo")
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("faces/a.png", b"second photo")
    return path


@pytest.mark.parametrize("make", [
    _zip_with_duplicate,
    lambda p: _tar(p, [("faces/a.png", b"first photo"), ("faces/a.png", b"second photo")]),
    lambda p: _tar(p, [("faces/a.png", b"first photo"), ("./faces//a.png", b"second photo")]),
], ids=["zip", "tar", "tar-same-path-spelt-differently"])
def test_archive_with_a_duplicate_member_name_is_refused_not_half_kept(tmp_path, make):
    archive = make(tmp_path / "photos.archive")
    dest = tmp_path / "work" / "out"
    with pytest.raises(DownloadError) as e:
        extract(archive, dest)
    msg = str(e.value)
    assert msg.startswith(f"{archive}: duplicate member ") and "a.png" in msg and "\n" not in msg
    _nothing_extracted(dest)


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_full_disk_while_extracting_is_a_full_disk_not_a_corrupt_archive(tmp_path, kind):
    """A real 256 KiB tmpfs as the destination and a valid archive of 1 MiB: the error names the disk
    problem and the destination; the earlier extraction there is kept as it was."""
    import subprocess
    import sys

    if not can_mount_tmpfs():
        pytest.skip("cannot mount a tmpfs in a user namespace here (unshare -rm)")
    payload = os.urandom(1 << 20)
    archive = (_zip(tmp_path / "big.zip", [("faces/a.png", payload)]) if kind == "zip"
               else _tar(tmp_path / "big.tar", [("faces/a.png", payload)]))
    disk = tmp_path / "disk"
    disk.mkdir()
    code = ("import sys; from pathlib import Path; from unmask.data.fetch import extract; "
            "from unmask.errors import DownloadError\n"
            "try:\n    extract(Path(sys.argv[1]), Path(sys.argv[2]))\n"
            "except DownloadError as e:\n    print('ERR', e); sys.exit(2)\n")
    script = (f"mount -t tmpfs -o size=256k tmpfs {disk} && mkdir -p {disk}/out/faces && "
              f"printf EARLIER > {disk}/out/faces/old.png && "
              f"{sys.executable} -c \"$0\" {archive} {disk}/out; echo rc=$?; cat {disk}/out/faces/old.png; echo; "
              f"ls -a {disk}")
    res = subprocess.run(["unshare", "-rm", "sh", "-c", script, code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    lines = res.stdout.splitlines()
    assert "rc=2" in lines, (res.stdout, res.stderr)
    err = next(line for line in lines if line.startswith("ERR "))
    assert err == f"ERR cannot unpack {archive} into {disk}/out: No space left on device (nothing was replaced)"
    assert "corrupt" not in res.stdout
    assert lines[lines.index("rc=2") + 1] == "EARLIER"             # the earlier extraction is intact
    assert sorted(lines[lines.index("rc=2") + 2:]) == [".", "..", "out"]   # no temporary left
