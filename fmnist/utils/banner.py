"""TensorFlow's start-up banner, held back from stderr.

TensorFlow 2.21 prints absl's notice and "oneDNN custom operations are on" on import, twice (two of
its libraries log them), whatever ``TF_CPP_MIN_LOG_LEVEL`` says (tensorflow/tensorflow#100442):
twice per stage in every log of ``make run``. The oneDNN setting is in summary.json and the
reproduction verdict; every other line the import prints still shows.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

BANNER = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\..*)$"
)


@contextlib.contextmanager
def banner_filtered() -> Iterator[None]:
    """Hold what native code writes to stderr meanwhile, then write it back without ``BANNER`` lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().splitlines(keepends=True) if not BANNER.match(line.rstrip(b"\n"))]
            rest = memoryview(b"".join(kept))
            while rest:
                rest = rest[os.write(2, rest) :]
