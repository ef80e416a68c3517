"""Stage ``download``: fetch the four Fashion-MNIST files into ``data/raw/`` and verify them.

Sources (``download.sources``) are tried in order, per file: a local directory (Debian's
``dataset-fashion-mnist`` package) or an HTTP mirror. A file is accepted only if its decompressed
bytes have the SHA-256 pinned in ``download.sha256``, so plain-HTTP mirrors are safe to use. It is
then re-gzipped deterministically, so ``data/raw`` has the same bytes (and DVC hash) whichever
mirror served it.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import sys
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter
from tqdm import tqdm

from stages import atomic
from stages.dataset import gunzip
from stages.errors import DataError, UserError, run_stage
from stages.params import load_params

RAW_DIR = Path("data/raw")
# The largest real .gz is 26 MB; a body far beyond that is refused without reading it all.
MAX_DOWNLOAD_BYTES = 48 * 2**20
REMEDY = (
    "on Debian or Ubuntu run 'sudo apt-get install dataset-fashion-mnist', "
    "or add a reachable mirror or directory to download.sources in params.yaml"
)


class DownloadError(UserError):
    """No source gave a verified copy of a file."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def http_session(retries: int) -> requests.Session:
    """A session that retries connection errors and transient statuses with exponential backoff."""
    retry = urllib3.Retry(
        total=retries,
        backoff_factor=0.5,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=("GET", "HEAD"),
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def read_url(session: requests.Session, url: str, timeout: float, label: str) -> bytes:
    """GET ``url`` with a size cap and a progress bar; the body is returned undecoded."""
    with session.get(url, stream=True, timeout=(timeout, timeout)) as resp:
        if resp.status_code != 200:
            raise DataError(f"HTTP {resp.status_code}")
        declared = int(resp.headers.get("Content-Length") or 0)
        if declared > MAX_DOWNLOAD_BYTES:
            raise DataError(f"body of {declared} bytes is larger than any Fashion-MNIST file")
        chunks, size = [], 0
        with tqdm(total=declared or None, unit="B", unit_scale=True, desc=label, disable=None, leave=False) as bar:
            # decode_content=False: a Content-Encoding header must not change the bytes we hash.
            for chunk in resp.raw.stream(2**16, decode_content=False):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise DataError("body is larger than any Fashion-MNIST file")
                chunks.append(chunk)
                bar.update(len(chunk))
        return b"".join(chunks)


def read_source(source: str, filename: str, session: requests.Session, timeout: float) -> bytes:
    """The raw ``.gz`` bytes of ``filename`` from one source."""
    if is_url(source):
        return read_url(session, f"{source.rstrip('/')}/{filename}", timeout, filename)
    path = Path(source) / filename
    if not path.is_file():
        raise DataError("not found")
    if path.stat().st_size > MAX_DOWNLOAD_BYTES:
        raise DataError("file is larger than any Fashion-MNIST file")
    return path.read_bytes()


def _reason(err: Exception, timeout: float) -> str:
    if isinstance(err, DataError):
        return str(err)
    if isinstance(err, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return f"timed out after {timeout:g}s"
    if isinstance(err, requests.ConnectionError):
        return "cannot connect"
    return f"{type(err).__name__}: {err}"


def fetch(name: str, sha256: str, sources: list[str], session: requests.Session, timeout: float) -> bytes:
    """The decompressed bytes of ``name`` from the first source whose copy verifies."""
    filename = f"{name}.gz"
    failures = []
    for source in sources:
        try:
            data = gunzip(read_source(source, filename, session, timeout), filename)
            digest = hashlib.sha256(data).hexdigest()
            if digest != sha256:
                raise DataError(f"SHA-256 {digest[:12]}… does not match the pinned {sha256[:12]}…")
            return data
        except (DataError, OSError, requests.RequestException, urllib3.exceptions.HTTPError) as err:
            failures.append(f"{source}: {_reason(err, timeout)}")
            print(f"  {filename}: {failures[-1]}; trying the next source", file=sys.stderr)
    raise DownloadError(f"no source gave a verified {filename} ({'; '.join(failures)}); {REMEDY}")


def probe(sources: list[str], session: requests.Session, timeout: float) -> str | None:
    """The first source that looks usable (a directory with the files, or a URL answering 200)."""
    for source in sources:
        if is_url(source):
            try:
                url = f"{source.rstrip('/')}/train-labels-idx1-ubyte.gz"
                if session.head(url, timeout=timeout, allow_redirects=True).status_code == 200:
                    return source
            except requests.RequestException:
                continue
        elif (Path(source) / "train-labels-idx1-ubyte.gz").is_file():
            return source
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.download", description=__doc__.splitlines()[0])
    parser.add_argument("--probe", action="store_true", help="only check that some source answers; exit 1 if none")
    args = parser.parse_args(argv)
    params = load_params()["download"]

    if args.probe:
        found = probe(params["sources"], http_session(0), min(params["timeout"], 5.0))
        if not found:
            raise DownloadError(f"none of the {len(params['sources'])} sources in download.sources answers; {REMEDY}")
        print(f"source available: {found}")
        return

    session = http_session(params["retries"])
    files = {
        name: fetch(name, digest, params["sources"], session, params["timeout"])
        for name, digest in params["sha256"].items()
    }
    with atomic.atomic_dir(RAW_DIR) as tmp:
        for name, data in files.items():
            # mtime=0 and a fixed level: the same content always gives the same .gz bytes.
            (tmp / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=6, mtime=0))
    print(f"downloaded and verified {len(files)} files into {RAW_DIR}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
