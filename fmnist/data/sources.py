"""Fetch the four Fashion-MNIST files from the first source that gives a verified copy.

Sources are a local directory (Debian's ``dataset-fashion-mnist`` package) or an HTTP mirror. A
file is accepted only if its decompressed bytes have the pinned SHA-256, so plain-HTTP mirrors are
safe to use.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter
from tqdm import tqdm

from fmnist.data.idx import gunzip
from fmnist.utils.errors import DataError, UserError

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
    # A server that never answers, once urllib3's retries are spent: requests calls that a
    # ConnectionError, though the connection was made and the answer timed out. (urllib3's refused
    # connection subclasses its timeout, for old callers' sake.)
    reason = getattr(err.args[0], "reason", None) if err.args else None
    timed_out = isinstance(reason, urllib3.exceptions.TimeoutError)
    if timed_out and not isinstance(reason, urllib3.exceptions.NewConnectionError):
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
