"""Downloads against a local HTTP server laid out like the authors' `datasets/` folder."""

import contextlib
import functools
import hashlib
import http.server
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import threading

import pytest

from mtd_tf.data import download
from mtd_tf.errors import ChecksumError
from mtd_tf.errors import MTDError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
FILENAMES = ("all_train_seq.txt", "test.txt")
# absl's log line prefix, e.g. "I1122 20:42:48.070594 139701585173376 file.py:6] ...".
ABSL_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; paths under /truncated/ promise 1000 bytes and send 10."""

    def do_GET(self):
        self.server.requested_paths.append(self.path)
        if self.path.startswith("/truncated/"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):
        del args  # Keeps test output clean.


@contextlib.contextmanager
def _serve(root):
    """Yields (base_url, server) for `root` on 127.0.0.1, on a free port, in a thread."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    server.requested_paths = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _all_files(folder):
    """Every file under `folder`, hidden temp files included, as relative paths."""
    return sorted(str(p.relative_to(folder)) for p in pathlib.Path(folder).rglob("*")
                  if p.is_file())


def _run_cli(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "MTD_DATA_DIR"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "mtd_tf.data.download", *args], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=120)


def _error_lines(stderr):
    """stderr lines that are not absl log records (there must be exactly one: the error)."""
    return [line for line in stderr.splitlines() if not ABSL_LOG_LINE.match(line)]


@pytest.fixture
def fake_remote(tmp_path, monkeypatch):
    """A tiny remote `yoochoose/` folder, with its hashes pinned for `yoochoose1_64`."""
    contents = {"all_train_seq.txt": b"train bytes " * 1000, "test.txt": b"test bytes"}
    remote = tmp_path / "remote"
    (remote / "yoochoose").mkdir(parents=True)
    for name, data in contents.items():
        (remote / "yoochoose" / name).write_bytes(data)
    monkeypatch.setitem(download.PINNED_SHA256, "yoochoose1_64",
                        {name: _sha256(data) for name, data in contents.items()})
    return remote, contents


def test_pinned_hashes_equal_shared_sha256sums(shared_data_dir):
    sums_path = shared_data_dir / "SHA256SUMS"
    if not sums_path.is_file():
        pytest.skip(f"{sums_path} not found")
    shared = {}
    for line in sums_path.read_text().splitlines():
        digest, relative = line.split()
        folder, filename = relative.split("/")
        shared.setdefault(folder, {})[filename] = digest
    for dataset, pinned in download.PINNED_SHA256.items():
        assert pinned == shared[dataset], dataset


def test_file_url_joins_with_one_slash():
    expected = "http://host/datasets/yoochoose/test.txt"
    assert download.file_url("http://host/datasets/", "yoochoose", "test.txt") == expected
    assert download.file_url("http://host/datasets", "yoochoose", "test.txt") == expected


def test_alias_downloads_remote_yoochoose_into_yoochoose1_64(fake_remote, tmp_path):
    remote, contents = fake_remote
    data_dir = tmp_path / "data"
    with _serve(remote) as (base_url, server):
        statuses = download.download_dataset("yoochoose", str(data_dir), base_url)
        assert statuses == {name: download.DOWNLOADED for name in FILENAMES}
        assert sorted(server.requested_paths) == ["/yoochoose/all_train_seq.txt",
                                                  "/yoochoose/test.txt"]
        for name, data in contents.items():
            assert (data_dir / "yoochoose1_64" / name).read_bytes() == data
        assert _all_files(data_dir) == [f"yoochoose1_64/{name}" for name in FILENAMES]

        # Verified files are skipped without touching the network.
        statuses = download.download_dataset("yoochoose1_64", str(data_dir), base_url)
        assert statuses == {name: download.ALREADY_PRESENT for name in FILENAMES}
        assert len(server.requested_paths) == 2


def test_corrupted_local_file_is_fetched_again(fake_remote, tmp_path):
    remote, contents = fake_remote
    folder = tmp_path / "data" / "yoochoose1_64"
    folder.mkdir(parents=True)
    (folder / "test.txt").write_bytes(b"stale")
    with _serve(remote) as (base_url, _):
        download.download_dataset("yoochoose", str(tmp_path / "data"), base_url)
    assert (folder / "test.txt").read_bytes() == contents["test.txt"]


def test_checksum_mismatch_names_file_and_hashes_and_keeps_nothing(
        fake_remote, tmp_path, monkeypatch):
    remote, contents = fake_remote
    wrong = "0" * 64
    monkeypatch.setitem(download.PINNED_SHA256, "yoochoose1_64",
                        {"all_train_seq.txt": wrong, "test.txt": wrong})
    data_dir = tmp_path / "data"
    with _serve(remote) as (base_url, _):
        with pytest.raises(ChecksumError) as error:
            download.download_dataset("yoochoose", str(data_dir), base_url)
    message = str(error.value)
    assert "all_train_seq.txt" in message
    assert wrong in message
    assert _sha256(contents["all_train_seq.txt"]) in message
    assert "\n" not in message
    assert _all_files(data_dir) == []


def test_truncated_response_keeps_nothing(tmp_path):
    with _serve(tmp_path) as (base_url, _):
        with pytest.raises(MTDError, match="cannot download .*truncated/x"):
            download.download_file(f"{base_url}truncated/x", str(tmp_path / "out" / "x"), "0" * 64)
    assert _all_files(tmp_path / "out") == []


def test_interrupted_download_keeps_nothing(fake_remote, tmp_path, monkeypatch):
    remote, _ = fake_remote

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    # Progress is logged after each chunk is written: interrupt there, mid-file.
    monkeypatch.setattr(download.logging, "log_every_n_seconds", interrupt)
    data_dir = tmp_path / "data"
    with _serve(remote) as (base_url, _):
        with pytest.raises(KeyboardInterrupt):
            download.download_dataset("yoochoose", str(data_dir), base_url)
    assert _all_files(data_dir) == []


def test_connection_refused_is_one_line_mtd_error(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(MTDError, match="cannot download") as error:
        download.download_dataset("diginetica", str(tmp_path), f"http://127.0.0.1:{port}/")
    assert "\n" not in str(error.value)
    assert _all_files(tmp_path) == []


def test_synthetic_is_not_downloadable(tmp_path):
    with pytest.raises(MTDError, match="diginetica, retailrocket, yoochoose1_64"):
        download.download_dataset("synthetic", str(tmp_path))


def test_cli_fetches_diginetica_byte_identical(require_shared, tmp_path):
    shared_data_dir = require_shared("diginetica")
    remote = tmp_path / "remote" / "diginetica"
    remote.mkdir(parents=True)
    for name in FILENAMES:
        (remote / name).symlink_to(shared_data_dir / "diginetica" / name)
    data_dir = tmp_path / "data"
    with _serve(tmp_path / "remote") as (base_url, _):
        result = _run_cli("--dataset=diginetica", f"--data_dir={data_dir}",
                          f"--base_url={base_url}")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout.splitlines()[-1])
        assert report["files"] == {name: "downloaded" for name in FILENAMES}
        for name in FILENAMES:
            assert ((data_dir / "diginetica" / name).read_bytes()
                    == (shared_data_dir / "diginetica" / name).read_bytes())
        assert _all_files(data_dir) == [f"diginetica/{name}" for name in FILENAMES]

        # Without --data_dir the folder comes from $MTD_DATA_DIR.
        result = _run_cli("--dataset=diginetica", f"--base_url={base_url}",
                          env_extra={"MTD_DATA_DIR": str(data_dir)})
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout.splitlines()[-1])
        assert report["files"] == {name: "already present" for name in FILENAMES}


def test_cli_tampered_copy_fails_with_checksum_error(require_shared, tmp_path):
    shared_data_dir = require_shared("diginetica")
    remote = tmp_path / "remote" / "diginetica"
    remote.mkdir(parents=True)
    tampered = bytearray((shared_data_dir / "diginetica" / "all_train_seq.txt").read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    (remote / "all_train_seq.txt").write_bytes(bytes(tampered))
    (remote / "test.txt").symlink_to(shared_data_dir / "diginetica" / "test.txt")
    data_dir = tmp_path / "data"
    with _serve(tmp_path / "remote") as (base_url, _):
        result = _run_cli("--dataset=diginetica", f"--data_dir={data_dir}",
                          f"--base_url={base_url}", "--verbosity=-1")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: all_train_seq.txt")
    assert download.PINNED_SHA256["diginetica"]["all_train_seq.txt"] in lines[0]
    assert _sha256(bytes(tampered)) in lines[0]
    assert _all_files(data_dir) == []


def test_cli_missing_remote_file_fails_with_404(tmp_path):
    (tmp_path / "remote").mkdir()
    data_dir = tmp_path / "data"
    with _serve(tmp_path / "remote") as (base_url, _):
        result = _run_cli("--dataset=retailrocket", f"--data_dir={data_dir}",
                          f"--base_url={base_url}")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    error_lines = _error_lines(result.stderr)
    assert len(error_lines) == 1, result.stderr
    assert error_lines[0].startswith("error: cannot download ")
    assert "retailrocket/all_train_seq.txt: HTTP 404" in error_lines[0]
    assert _all_files(data_dir) == []
