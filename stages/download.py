"""Stage ``download``: fetch the four Fashion-MNIST files into ``data/raw/`` and verify them.

Sources (``download.sources``) are tried in order, per file; a file is accepted only if its
decompressed bytes have the SHA-256 pinned in ``download.sha256``. It is then re-gzipped
deterministically, so ``data/raw`` has the same bytes (and DVC hash) whichever mirror served it.
"""

from __future__ import annotations

import argparse
import gzip
import sys

from fmnist.config.params import load_sections
from fmnist.data.idx import RAW_DIR
from fmnist.data.sources import REMEDY, DownloadError, fetch, http_session, probe
from fmnist.utils.atomic import atomic_dir
from fmnist.utils.errors import run_stage


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m stages.download", description=__doc__.splitlines()[0])
    parser.add_argument("--probe", action="store_true", help="only check that some source answers; exit 1 if none")
    args = parser.parse_args(argv)
    params = load_sections("download")["download"]

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
    with atomic_dir(RAW_DIR) as tmp:
        for name, data in files.items():
            # mtime=0 and a fixed level: the same content always gives the same .gz bytes.
            (tmp / f"{name}.gz").write_bytes(gzip.compress(data, compresslevel=6, mtime=0))
    print(f"downloaded and verified {len(files)} files into {RAW_DIR}")


if __name__ == "__main__":
    sys.exit(run_stage(main))
