"""The errors a user can cause, and how a stage reports them."""

from __future__ import annotations

import contextlib
import errno
import re
import signal
import sys
from collections.abc import Callable, Iterator


class UserError(Exception):
    """A problem with the user's input or environment, reported as one line."""

    exit_code = 1


class ParamsError(UserError):
    """``params.yaml`` has an unknown key or a value outside what is allowed."""

    exit_code = 2


class DataError(UserError):
    """An input file is missing, corrupt or not what it claims to be."""


class OutputError(UserError):
    """An output cannot be written where the pipeline declares it."""


# A write refused for want of space: the disk (ENOSPC) or the user's quota on it (EDQUOT) is full.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFullError(OutputError):
    """A write found no space left; ``path`` is what could not be written."""

    def __init__(self, path: object, strerror: str) -> None:
        self.path, self.strerror = path, strerror
        super().__init__(f"cannot write {path}: the disk is full ({strerror}); free some space on it and rerun")


def one_line(err: BaseException) -> str:
    """An exception's message with its line breaks folded, for a one-line error."""
    return " ".join(str(err).split())


def run_stage(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> int:
    """Run a stage's ``main``; turn a :class:`UserError` into one line on stderr and an exit code.

    SIGTERM (``timeout``, CI runners, ``kill``) and SIGHUP (a closed terminal) are turned into
    ``KeyboardInterrupt`` like Ctrl-C, so that the atomic writers' clean-up runs and no partial
    output is left whichever ends the run; by default Python dies of them without cleaning up.
    """
    # SIGINT too: a shell starts background jobs with it ignored, and Python would keep that.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    sys.stdout.reconfigure(line_buffering=True)  # DVC pipes our output; show each epoch as it ends
    try:
        main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except OSError as err:  # a disk, permission or missing-file problem the user can fix
        where = f" {err.filename}" if err.filename else ""
        if err.errno in DISK_FULL:  # a write outside the atomic writers, which name their path
            print(f"error: {DiskFullError(err.filename or 'a file', err.strerror)}", file=sys.stderr)
        else:
            print(f"error: cannot access{where}: {err.strerror or err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing was written, rerun with 'dvc repro'", file=sys.stderr)
        return 130
    except Exception as err:
        line = missing_kernel(err)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 1
    return 0


def missing_kernel(err: BaseException) -> str | None:
    """TensorFlow's failure on an op that oneDNN has no kernel for on this CPU, as one line; else None.

    oneDNN picks kernels by instruction set, and some sets lack some kinds: a bfloat16 convolution,
    say, has kernels for AVX-512 but none for AVX2 (``ONEDNN_MAX_CPU_ISA=AVX2``, or a laptop's CPU).
    """
    if not type(err).__module__.startswith("tensorflow"):
        return None
    found = re.search(r"could not create a primitive descriptor for (?:the |an? )?(.+?) primitive", str(err))
    if found is None:
        return None
    return (
        f"oneDNN has no {found.group(1)} kernel for this model on this CPU (its instruction set lacks it, as AVX2 "
        "lacks bfloat16 convolutions); set the family's precision: float32, or run on a CPU with AVX-512"
    )


_deferring = False
_pending = False


def _interrupt(signum: int, frame: object) -> None:
    global _pending
    if _deferring and not _pending:
        _pending = True
        return
    _pending = False  # a second signal does not wait, and answers the first too
    raise KeyboardInterrupt


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold a signal until :func:`check_interrupt` is called, instead of raising at once.

    Raised in the middle of TensorFlow's work, ``KeyboardInterrupt`` can corrupt its heap (about
    one interrupt in fifteen aborted with ``free(): invalid next size``); training checks between
    batches instead.
    """
    global _deferring, _pending
    _deferring, _pending = True, False
    try:
        yield
        check_interrupt()
    finally:
        _deferring = False


def check_interrupt() -> None:
    """Raise ``KeyboardInterrupt`` if a signal arrived while interrupts were deferred."""
    global _pending
    if _pending:
        _pending = False
        raise KeyboardInterrupt
