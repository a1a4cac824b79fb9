"""The downloader against an HTTP server on 127.0.0.1 serving small zip files made here."""

import http.server
import io
import threading
import zipfile
from functools import partial

import pytest

from asd_tools.data.corpus import Corpus
from asd_tools.data.download import DownloadError, download, fetch, verify_zip
from asd_tools.data.dump import dump_machine
from asd_tools.data.ground_truth import ground_truth_files, label_evaluation_clips
from asd_tools.datasets.registry import DATASET_SPECS
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


def _year_clips(spec, machine):
    """Per archive set, (member path inside the zip, anonymised eval name or None, labelled name) per clip:
    one training clip per unit, one test clip per development unit and one per evaluation unit."""
    clips = {"dev": [], "eval_train": [], "eval_test": []}
    for half, set_name in (("dev", "dev"), ("eval", "eval_train")):
        for u in spec.units(machine, half):
            if spec.naming == "machine_id":
                clips[set_name].append((f"{machine}/train/normal_id_{u:02d}_00000000.wav", None, None))
            else:
                clips[set_name].append(
                    (f"{machine}/train/section_{u:02d}_source_train_normal_0000_a_1.wav", None, None)
                )
    for u in spec.units(machine, "dev"):
        if spec.naming == "machine_id":
            clips["dev"].append((f"{machine}/test/anomaly_id_{u:02d}_00000000.wav", None, None))
        elif spec.test_folders:  # 2021: per-domain test folders, no attributes in test names
            clips["dev"].append((f"{machine}/source_test/section_{u:02d}_source_test_anomaly_0000.wav", None, None))
        else:
            clips["dev"].append((f"{machine}/test/section_{u:02d}_source_test_anomaly_0000_a_1.wav", None, None))
    for u in spec.units(machine, "eval"):
        if spec.naming == "machine_id":
            anon, full = f"id_{u:02d}_00000000.wav", f"anomaly_id_{u:02d}_00000007.wav"
            member = f"{machine}/test/{anon}"
        elif spec.test_folders:
            anon, full = f"section_{u:02d}_source_test_0000.wav", f"section_{u:02d}_source_test_anomaly_0007.wav"
            member = f"{machine}/source_test/{anon}"
        else:
            anon, full = f"section_{u:02d}_0000.wav", f"section_{u:02d}_source_test_anomaly_0007_a_1.wav"
            member = f"{machine}/test/{anon}"
        clips["eval_test"].append((member, anon, full))
    return clips


def _serve_year(root, tmp_path, spec, machine):
    """Zenodo-like records of one year for one machine type, and its ground truth (every clip anomalous)."""
    wav = tmp_path / "clip.wav"
    write_wav(wav, seconds=2.5)
    clips = _year_clips(spec, machine)
    halves = spec.datasets_of(machine)
    for archive in spec.archives:
        if archive.dataset in halves:
            path = root / "record" / archive.record / "files" / archive.file_name(machine)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_zip_bytes({member: wav for member, _, _ in clips[archive.name]}))
    evaluation = [(anon, full) for _, anon, full in clips["eval_test"]]
    for rel in {rel for u in spec.units(machine, "eval") for rel in ground_truth_files(spec, machine, u)}:
        path = root / "gt" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if spec.ground_truth.format == "eval_data_list":
            label = ",1" if spec.naming == "machine_id" else ""
            path.write_text(f"{machine}\n" + "".join(f"{anon},{full}{label}\n" for anon, full in evaluation))
        elif "ground_truth_domain" in rel:
            path.write_text("".join(f"{anon},0\n" for anon, _ in evaluation if f"section_{rel[-11:-9]}_" in anon))
        else:
            section, domain = (rel.split("_section_")[1].split("_") + ["", ""])[:2]
            rows = [anon for anon, _ in evaluation if anon.startswith(f"section_{section}_")]
            rows = [a for a in rows if domain != "target"]  # the served test clips are all source-domain
            path.write_text("".join(f"{anon},1\n" for anon in rows))
    return clips


def _machine_of(spec):
    """A machine type with both halves where the year has them, else an evaluation-only one."""
    both = [m for m in spec.machines() if len(spec.datasets_of(m)) == 2]
    return both[0] if both else spec.eval_machines[0]


@pytest.mark.parametrize("layout", list(DATASET_SPECS))
def test_download_verify_unpack_dump_and_label(server, tmp_path, layout):
    """Each year's archive names, unpacked layout (2021's test folders merged), ground truth; then the
    dump parses every name and the ground truth labels the evaluation clips."""
    root, url = server
    spec = DATASET_SPECS[layout]
    machines = [_machine_of(spec)] + ([spec.dev_machines[0]] if spec.first_shot else [])
    clips = {m: _serve_year(root, tmp_path, spec, m) for m in machines}
    kwargs = dict(zenodo_url=f"{url}/record", ground_truth_url=f"{url}/gt", layout=layout)
    download(machines, tmp_path / "dl", tmp_path / "data", **kwargs)
    data = tmp_path / "data"
    expected = sorted(a.file_name(m) for m in machines for a in spec.archives if a.dataset in spec.datasets_of(m))
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == expected  # kept
    for machine in machines:
        for set_name, rows in clips[machine].items():
            half = "dev" if set_name == "dev" else "eval"
            for member, _, _ in rows:
                name = member.split("/")[-1]
                split = "train" if "/train/" in member else "test"
                assert (data / half / member.split("/")[0] / split / name).exists(), member
        assert not list((data / spec.datasets_of(machine)[0] / machine).glob("*_test"))
        dump_machine(data, machine, tmp_path / "dump", layout=layout)
    corpus = Corpus(tmp_path / "dump")
    assert corpus.spec is spec
    labelled = label_evaluation_clips(corpus.manifest(machines), data / "ground_truth", spec)
    eval_test = labelled[(labelled.dataset == "eval") & (labelled.split == "test")]
    assert len(eval_test) == len(spec.units(machines[0], "eval")) and set(eval_test["state"]) == {"anomaly"}
    assert set(eval_test["domain"]) == {"source"}
    # a second run fetches nothing
    count = len(RangeHandler.requests)
    download(machines, tmp_path / "dl", tmp_path / "data", **kwargs)
    assert len(RangeHandler.requests) == count


def test_unknown_machine_type_of_a_year_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown machine type\(s\) .pump. in dcase2023; known: .*bandsaw"):
        download(["pump"], tmp_path / "dl", tmp_path / "data", layout="dcase2023")


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
