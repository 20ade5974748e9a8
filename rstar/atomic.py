"""Files and directories written whole or not at all: the rule every file of a run follows.

A file is written under a temporary name in its final directory and renamed into place
(:func:`atomic_write`); a directory (a checkpoint) is written as a temporary sibling and
swapped in (:func:`atomic_dir`). Readers never see half a file, a rerun replaces it, and
temporary names start with a dot, so they never match the globs that read the results.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, fsync it, rename it to ``path``.

    The rename is atomic on one filesystem: ``path`` is either the old file or the whole
    new one. On any error the temporary file is removed and the error re-raised.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_dir(out_dir: Path, write: Callable[[Path], object]) -> None:
    """Run ``write(tmp_dir)``, then swap ``tmp_dir`` in as ``out_dir`` (old one removed)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{tag}")
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out_dir.with_name(f".{out_dir.name}.old-{tag}")
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
