"""Checkpoints converted for a compiled inference library, once, cached beside them.

A compiled backend (``rstar.models.ctranslate2_backend``) cannot read a transformers
checkpoint directly: it reads a converted copy. :func:`converted` returns that copy,
making it on first use:

- **keyed by content**: the cache key is a digest of the checkpoint's files (names and
  bytes) plus the conversion's own settings, so a new SFT checkpoint written to the same
  directory is converted again, and an unchanged one never is;
- **beside the checkpoint**: in the sibling directory ``<checkpoint>.converted/<key>/``
  (the checkpoint directory itself stays as transformers wrote it);
- **atomic**: the conversion is written to a temporary directory and renamed into place,
  so a crash leaves no half conversion under the key, and a reader never sees one;
- **one conversion at a time**: a lock file serialises processes converting the same
  checkpoint; a process that waited finds the other's result and uses it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import shutil
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_SUFFIX = ".converted"


def checkpoint_digest(directory: Path) -> str:
    """SHA-256 over the relative names and the bytes of every file in ``directory``
    (remembered in this process while no file's size or modification time changes)."""
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    signature = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _digest(directory, signature)


@cache
def _digest(directory: Path, signature: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in signature:
        path = Path(name)
        digest.update(str(path.relative_to(directory)).encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def cache_dir(checkpoint: Path) -> Path:
    """Where the conversions of ``checkpoint`` are kept."""
    return checkpoint.with_name(checkpoint.name + CACHE_SUFFIX)


def converted(checkpoint: Path, settings: str, convert: Callable[[Path, Path], None]) -> Path:
    """The conversion of ``checkpoint`` under ``settings`` (e.g. ``ctranslate2-float32``),
    made by ``convert(checkpoint, out_dir)`` when it is not cached yet (module doc)."""
    checkpoint = checkpoint.resolve()
    key = f"{settings}-{checkpoint_digest(checkpoint)[:16]}"
    root = cache_dir(checkpoint)
    target = root / key
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_dir():  # another process converted it while we waited
            return target
        tmp = root / f".{key}.tmp-{uuid.uuid4().hex[:8]}"
        log.info("converting %s for %s into %s", checkpoint, settings, target)
        try:
            convert(checkpoint, tmp)
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for stale in root.glob(f"{settings}-*"):  # conversions of earlier contents
            if stale != target:
                shutil.rmtree(stale, ignore_errors=True)
    return target
