"""The downloader against an HTTP server on 127.0.0.1 serving small zip files made here."""

import http.server
import io
import threading
import zipfile
from functools import partial

import pytest

from asd_tools.data.download import DownloadError, download_dcase2022, fetch, verify_zip
from tests.conftest import write_wav


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder, honouring "Range: bytes=N-" (as Zenodo does)."""

    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        RangeHandler.requests.append((self.path, self.headers.get("Range")))
        path = self.translate_path(self.path)
        try:
            data = open(path, "rb").read()
        except OSError:
            self.send_error(404)
            return
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.requests = []
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _zip_bytes(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in members.items():
            archive.write(path, name)
    return buffer.getvalue()


def _serve_machine(root, tmp_path, machine="fan"):
    """Zenodo-like records for one machine type, and the evaluator's ground truth files."""
    wav = tmp_path / "clip.wav"
    write_wav(wav, seconds=2.5)
    archives = {
        f"6355122/files/dev_{machine}.zip": {
            f"{machine}/train/section_00_source_train_normal_0000_a_1.wav": wav,
            f"{machine}/test/section_00_source_test_anomaly_0000_a_1.wav": wav,
        },
        f"6462969/files/eval_data_{machine}_train.zip": {
            f"{machine}/train/section_03_source_train_normal_0000_a_1.wav": wav
        },
        f"6586456/files/eval_data_{machine}_test.zip": {f"{machine}/test/section_03_0000.wav": wav},
    }
    for name, members in archives.items():
        path = root / "record" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_zip_bytes(members))
    for folder in ("ground_truth_data", "ground_truth_domain"):
        for section in ("03", "04", "05"):
            path = root / "gt" / folder / f"ground_truth_{machine}_section_{section}_test.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"section_{section}_0000.wav,1\n")


def test_download_verify_unpack(server, tmp_path):
    root, url = server
    _serve_machine(root, tmp_path)
    download_dcase2022(
        ["fan"], tmp_path / "dl", tmp_path / "data", zenodo_url=f"{url}/record", ground_truth_url=f"{url}/gt"
    )
    data = tmp_path / "data"
    assert (data / "dev/fan/train/section_00_source_train_normal_0000_a_1.wav").exists()
    assert (data / "eval/fan/train/section_03_source_train_normal_0000_a_1.wav").exists()
    assert (data / "eval/fan/test/section_03_0000.wav").exists()
    assert (data / "ground_truth/ground_truth_domain/ground_truth_fan_section_05_test.csv").exists()
    archives = sorted(p.name for p in (tmp_path / "dl").iterdir())
    assert archives == ["dev_fan.zip", "eval_data_fan_test.zip", "eval_data_fan_train.zip"]  # kept
    # a second run fetches nothing
    count = len(RangeHandler.requests)
    download_dcase2022(
        ["fan"], tmp_path / "dl", tmp_path / "data", zenodo_url=f"{url}/record", ground_truth_url=f"{url}/gt"
    )
    assert len(RangeHandler.requests) == count


def test_partial_download_is_resumed(server, tmp_path):
    root, url = server
    payload = bytes(range(256)) * 4000
    (root / "big.bin").write_bytes(payload)
    dest = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(payload[:12345])
    fetch(f"{url}/big.bin", dest)
    assert dest.read_bytes() == payload
    assert RangeHandler.requests[-1][1] == "bytes=12345-"
    assert not (tmp_path / "big.bin.part").exists()


def test_corrupt_archive_is_reported_and_kept(tmp_path):
    path = tmp_path / "dev_fan.zip"
    good = _zip_bytes({"fan/x.txt": __file__})
    # flip a byte inside the stored member's data so that its CRC fails
    broken = bytearray(good)
    broken[40] ^= 0xFF
    path.write_bytes(bytes(broken))
    with pytest.raises(DownloadError):
        verify_zip(path)
    assert path.exists()
    path.write_bytes(b"not a zip at all")
    with pytest.raises(DownloadError, match="not a valid zip"):
        verify_zip(path)
    assert path.exists()


def test_no_internet_fails_at_once_with_advice(tmp_path):
    # port 9 on loopback: nothing listens, the connection is refused immediately
    with pytest.raises(DownloadError, match="no internet access.*synthetic"):
        fetch("http://127.0.0.1:9/dev_fan.zip", tmp_path / "dev_fan.zip", timeout=5)
    assert not (tmp_path / "dev_fan.zip").exists()
