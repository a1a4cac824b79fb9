"""Download any registered year's DCASE Task 2 archives and its published ground truth.

* Resumable: a complete archive is skipped; a partial ``.part`` file is continued with an
  HTTP Range request.
* Verified: every archive's CRCs are checked before it is unpacked.
* Never destructive: downloaded archives are kept; a corrupt one is reported, not removed.
* Unpacked through a temporary folder, so a killed run never leaves a half-unpacked
  machine folder that the dump stage would trust.
"""

import logging
import shutil
import socket
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from asd_tools.data.ground_truth import GROUND_TRUTH_FOLDER, ground_truth_files
from asd_tools.datasets.registry import DEFAULT, dataset_spec
from asd_tools.utils import progress

ZENODO_URL = "https://zenodo.org/record"
SETS = ("dev", "eval_train", "eval_test")  # the archive sets of every year
CHUNK = 1 << 20


class DownloadError(ConnectionError):
    """A download that cannot go on; the message says what to do instead."""


def _open(url, timeout, start=0):
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # range not satisfiable: the part file is already complete
            return None
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, socket.timeout, OSError) as err:
        raise DownloadError(
            f"cannot reach {url} ({getattr(err, 'reason', err)}). This machine may have no internet access: "
            "download the archives elsewhere into the download folder (they are picked up as they are), "
            "or run the recipe on the built-in synthetic data (--data synthetic)."
        ) from None


def fetch(url, dest, timeout=30.0) -> Path:
    """Download ``url`` to ``dest``, continuing ``dest.part`` if present; skip if ``dest`` exists."""
    dest = Path(dest)
    if dest.exists():
        logging.info(f"{dest} already downloaded")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    response = _open(url, timeout, start)
    if response is None:
        part.rename(dest)
        return dest
    with response:
        resumed = response.status == 206
        if start and not resumed:
            logging.warning(f"{url}: server ignored the resume request; starting {part.name} again")
            start = 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with (
            open(part, "ab" if resumed else "wb") as f,
            progress(total=total, initial=start, unit="B", unit_scale=True, desc=dest.name, mininterval=2) as bar,
        ):
            while chunk := response.read(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
    if total is not None and part.stat().st_size != total:
        raise DownloadError(f"{url}: got {part.stat().st_size} of {total} bytes; run again to resume")
    part.rename(dest)
    return dest


def verify_zip(path) -> None:
    """Check that ``path`` is a readable zip whose members all pass their CRC check."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except zipfile.BadZipFile as err:
        raise DownloadError(f"{path} is not a valid zip archive ({err}); move it aside and run again") from None
    if bad is not None:
        raise DownloadError(f"{path}: member {bad} fails its CRC check; move the archive aside and run again")


def unpack(path, dest_root) -> None:
    """Unpack ``path`` into ``dest_root`` via a temporary folder; a marker records completion."""
    path, dest_root = Path(path), Path(dest_root)
    marker = dest_root / f".unpacked_{path.name}"
    if marker.exists():
        logging.info(f"{path.name} already unpacked into {dest_root}")
        return
    tmp = dest_root / f".tmp_{path.stem}"
    shutil.rmtree(tmp, ignore_errors=True)  # only our own unfinished temporary folder
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if Path(member).is_absolute() or ".." in Path(member).parts:
                raise DownloadError(f"{path}: refusing unsafe member path {member}")
        archive.extractall(tmp)
    for entry in sorted(tmp.iterdir()):
        _merge(entry, dest_root / entry.name)
    shutil.rmtree(tmp)
    marker.touch()


def _merge(src: Path, dst: Path) -> None:
    """Move ``src`` onto ``dst``, merging folders (dev and eval archives share machine folders)."""
    if src.is_dir() and dst.is_dir():
        for child in src.iterdir():
            _merge(child, dst / child.name)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        src.replace(dst)


def merge_test_folders(machine_dir: Path, folders) -> None:
    """Move the clips of ``source_test/`` and ``target_test/`` (2021) into ``test/``, as the official
    baseline's download script does; the names already carry the domain, so nothing collides."""
    for name in folders:
        folder = machine_dir / name
        if not folder.is_dir():
            continue
        (machine_dir / "test").mkdir(exist_ok=True)
        for clip in sorted(folder.iterdir()):
            clip.replace(machine_dir / "test" / clip.name)
        folder.rmdir()


def download(
    machines,
    download_dir,
    data_root,
    sets=SETS,
    zenodo_url=ZENODO_URL,
    ground_truth_url=None,
    timeout=30.0,
    layout=DEFAULT,
) -> None:
    """Fetch, verify and unpack the chosen sets of data set ``layout`` for ``machines``, plus the
    evaluation ground truth; each archive is fetched only for the machine types of its half."""
    spec = dataset_spec(layout)
    download_dir, data_root = Path(download_dir), Path(data_root)
    archives = {a.name: a for a in spec.archives}
    for set_name in sets:
        if set_name not in archives:
            raise ValueError(f"unknown set '{set_name}': choose from {sorted(archives)}")
    for machine in machines:
        halves = spec.datasets_of(machine)  # an unknown machine type fails here, naming the known ones
        for set_name in sets:
            archive = archives[set_name]
            if archive.dataset not in halves:
                continue
            name = archive.file_name(machine)
            path = fetch(f"{zenodo_url}/{archive.record}/files/{name}", download_dir / name, timeout)
            verify_zip(path)
            unpack(path, data_root / archive.dataset)
            merge_test_folders(data_root / archive.dataset / machine, spec.test_folders)
        if "eval_test" in sets and "eval" in halves:
            fetch_ground_truth(spec, machine, data_root / GROUND_TRUTH_FOLDER, ground_truth_url, timeout)
    logging.info(f"{spec.title} data for {' '.join(machines)} is in {data_root}")


def fetch_ground_truth(spec, machine, folder: Path, url=None, timeout=30.0) -> None:
    """The ground-truth files of ``machine``'s evaluation units (an evaluation list once for all)."""
    url = url or spec.ground_truth.url
    relative = dict.fromkeys(
        rel for unit in spec.units(machine, "eval") for rel in ground_truth_files(spec, machine, unit)
    )
    for rel in relative:
        fetch(f"{url}/{rel}", folder / rel, timeout)
