"""Download the DCASE 2022 Task 2 archives and the evaluator's ground truth.

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
from dataclasses import dataclass
from pathlib import Path

from asd_tools.constants import EVAL_SECTIONS
from asd_tools.utils import progress

ZENODO_URL = "https://zenodo.org/record"
GROUND_TRUTH_URL = "https://raw.githubusercontent.com/Kota-Dohi/dcase2022_evaluator/main"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    record: str
    file_pattern: str
    dataset: str  # the folder it unpacks into: dev/ or eval/


ARCHIVES = {
    "dev": Archive("6355122", "dev_{machine}.zip", "dev"),
    "eval_train": Archive("6462969", "eval_data_{machine}_train.zip", "eval"),
    "eval_test": Archive("6586456", "eval_data_{machine}_test.zip", "eval"),
}
GROUND_TRUTH_FOLDERS = ("ground_truth_data", "ground_truth_domain")


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


def download_dcase2022(
    machines,
    download_dir,
    data_root,
    sets=tuple(ARCHIVES),
    zenodo_url=ZENODO_URL,
    ground_truth_url=GROUND_TRUTH_URL,
    timeout=30.0,
) -> None:
    """Fetch, verify and unpack the chosen sets for ``machines``, plus the evaluation ground truth."""
    download_dir, data_root = Path(download_dir), Path(data_root)
    for set_name in sets:
        if set_name not in ARCHIVES:
            raise ValueError(f"unknown set '{set_name}': choose from {sorted(ARCHIVES)}")
    for machine in machines:
        for set_name in sets:
            archive = ARCHIVES[set_name]
            name = archive.file_pattern.format(machine=machine)
            path = fetch(f"{zenodo_url}/{archive.record}/files/{name}", download_dir / name, timeout)
            verify_zip(path)
            unpack(path, data_root / archive.dataset)
        if "eval_test" in sets:
            for folder in GROUND_TRUTH_FOLDERS:
                for section in EVAL_SECTIONS:
                    name = f"{folder}/ground_truth_{machine}_section_{section:02d}_test.csv"
                    fetch(f"{ground_truth_url}/{name}", data_root / "ground_truth" / name, timeout)
    logging.info(f"DCASE 2022 data for {' '.join(machines)} is in {data_root}")
