"""Files that appear whole or not at all: written beside their destination, then moved onto it in one step."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (os.umask alone must set one to read it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(tmp: str | Path, path: str | Path) -> None:
    """Move a finished temp file or folder onto `path`, with the mode open()/mkdir() would have given it: mkstemp and
    mkdtemp make theirs private to the owner, and a saved session or a checkpoint is meant to be shared."""
    os.chmod(tmp, (0o777 if Path(tmp).is_dir() else 0o666) & ~_umask())
    os.replace(tmp, path)


@contextmanager
def temp_beside(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temp file beside `path` to write; published onto `path` when the block ends, removed if the block raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write through a synced temp file beside `path`, so a crash leaves the old file or the new one, never half."""
    with temp_beside(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())
