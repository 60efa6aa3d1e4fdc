"""Safe files: atomic writes, safe loads, content digests for cache keys, and verified downloads.

Every output is written to a temporary file (its name holds the writer's PID) and renamed into place;
temporary files left by a killed writer are removed by the next write into the same folder. Cache keys
come from :func:`digest`, which hashes what determines a result's content (weights, data, settings),
never names or sizes. :func:`download` fetches over https only and verifies a pinned hash before the
file is moved into place.

Lessons: 07, 12.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

_TMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[a-z0-9_]+\.tmp$")  # .<name>.<pid>.<random>.tmp
LEGACY_TMP_AGE_S = 3600.0  # temp files of the old naming (no PID) are removed once this old


def _pid_alive(pid: int) -> bool:
    """True when a process with this PID exists (a zombie counts as gone)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # no such process, or gone while we looked
        return False


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete ``.<name>.<pid>.*.tmp`` files in ``folder`` whose writing process is gone; return them.

    Temporary files without a PID in their name (written by older versions) go once they are an hour old.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(".tmp")) or not entry.is_file():
            continue
        match = _TMP.match(entry.name)
        try:
            if match:
                stale = int(match["pid"]) != os.getpid() and not _pid_alive(int(match["pid"]))
            else:
                stale = now - entry.stat().st_mtime > LEGACY_TMP_AGE_S
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # raced with another cleaner or the writer itself
            pass
    return removed


def _temp_file(path: Path) -> tuple[int, str]:
    """A new temporary file next to ``path`` (``.<name>.<pid>.<random>.tmp``), stale ones cleaned first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes private files; outputs get normal permissions
    return fd, tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of it."""
    path = Path(path)
    fd, tmp = _temp_file(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows when on the same file system
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically ``torch.save`` an object made of tensors, numbers, strings, lists and dicts."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Atomically write a numpy array in ``.npy`` format."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    return atomic_write_bytes(path, buffer.getvalue())


def cached_npy(path: str | os.PathLike, compute: Callable[[], np.ndarray], cache: bool = True) -> np.ndarray:
    """``compute()``, or its earlier result read from ``path``; a new result is saved there atomically.

    A cache file that cannot be read (truncated, damaged) is reported in one line, recomputed and rewritten.
    """
    path = Path(path)
    if cache and path.exists():
        try:
            return np.load(path, allow_pickle=False)
        except Exception as err:  # noqa: BLE001 - any unreadable cache file is rebuilt
            print(f"cache file {path} is unreadable ({type(err).__name__}: {str(err)[:100]}); recomputing")
    array = compute()
    if cache:
        atomic_save_npy(path, array)
    return array


def safe_torch_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Load a file written by ``atomic_torch_save`` without unpickling arbitrary code."""
    return torch.load(path, map_location=map_location, weights_only=True)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --- content digests for cache keys ---------------------------------------------------------------

_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) → SHA-256


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content, computed once per process per (path, size, modification time)."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        _FILE_DIGESTS[key] = sha256_file(resolved)
    return _FILE_DIGESTS[key]


def _folder_files(folder: Path) -> list[Path]:
    """The files of a folder, recursively, in a fixed order; hidden files and folders are skipped."""
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _feed(digest: Any, part: Any) -> None:
    """Add one part to a running hash, tagged by kind so that different values never collide."""
    if isinstance(part, torch.Tensor):
        part = part.detach().cpu().numpy()
    if dataclasses.is_dataclass(part) and not isinstance(part, type):
        part = dataclasses.asdict(part)
    if isinstance(part, (bytes, bytearray, memoryview)):
        data = bytes(part)
        digest.update(b"B%d:" % len(data) + data)
    elif isinstance(part, str):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(b"S%d:" % len(data) + data)
    elif isinstance(part, Path):
        if part.is_dir():
            files = _folder_files(part)
            digest.update(b"D%d:" % len(files))
            for file in files:
                _feed(digest, file.relative_to(part).as_posix())
                digest.update(file_digest(file).encode())
        else:
            digest.update(b"F:" + file_digest(part).encode())
    elif isinstance(part, np.ndarray):
        array = np.ascontiguousarray(part)
        digest.update(f"A{array.dtype.str}{array.shape}:".encode())
        digest.update(array.tobytes() if array.dtype != object else json.dumps(array.tolist()).encode())
    elif isinstance(part, dict):
        digest.update(b"M%d:" % len(part))
        for key in sorted(part, key=str):
            _feed(digest, str(key))
            _feed(digest, part[key])
    elif isinstance(part, (list, tuple)):
        digest.update(b"L%d:" % len(part))
        for item in part:
            _feed(digest, item)
    elif part is None or isinstance(part, (bool, int, float, np.number, np.bool_)):
        digest.update(b"N" + json.dumps(part.item() if isinstance(part, (np.number, np.bool_)) else part).encode())
    else:
        raise TypeError(f"digest() cannot hash a {type(part).__name__}; pass bytes, str, numbers, arrays, "
                        "paths (files or folders), lists, dicts or dataclasses")


def digest(*parts: Any, length: int = 24) -> str:
    """A hex digest (first ``length`` characters of SHA-256) of everything that determines a result.

    ``str`` parts are hashed as text; ``Path`` parts by the *content* of the file, or of every file in
    the folder (with their relative names): two copies of a model with different weights never share a
    key, however their folders are named. Arrays and tensors are hashed with dtype and shape.
    """
    running = hashlib.sha256()
    for part in parts:
        _feed(running, part)
    return running.hexdigest()[:length]


# --- verified downloads -----------------------------------------------------------------------------

class DownloadError(RuntimeError):
    """A download failed or its content does not match the pinned hash (nothing was kept)."""


def _check(path: Path, expected: dict[str, str]) -> None:
    """Raise DownloadError when ``path`` does not match every expected hash."""
    for kind, want in expected.items():
        if kind == "sha256":
            got = sha256_file(path)
        elif kind == "md5":
            got = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        elif kind == "gunzip_sha256":
            running = hashlib.sha256()
            with gzip.open(path, "rb") as handle:
                while block := handle.read(1 << 20):
                    running.update(block)
            got = running.hexdigest()
        else:
            raise ValueError(f"unknown hash kind {kind!r}; use sha256, md5 or gunzip_sha256")
        if len(want) < 8 or not got.startswith(want.lower()):
            raise DownloadError(f"{path.name}: {kind} is {got}, expected {want}; the file was not kept")


def download(url: str, path: str | os.PathLike, *, sha256: str = "", md5: str = "", gunzip_sha256: str = "",
             opener: Callable[[str], Any] | None = None) -> Path:
    """Fetch ``url`` (https only; file:// for tests) into ``path``, verified before it is moved into place.

    ``sha256`` may be a prefix of at least 8 hex digits (torchvision's file names carry one).
    ``gunzip_sha256`` checks the decompressed content of a ``.gz`` file, ``md5`` a published MD5.
    An existing file that already matches is kept without a download.
    """
    if not url.startswith(("https://", "file://")):
        raise DownloadError(f"refusing to download {url}: only https:// URLs are allowed")
    expected = {k: v for k, v in (("sha256", sha256), ("md5", md5), ("gunzip_sha256", gunzip_sha256)) if v}
    if not (sha256 or gunzip_sha256):
        raise ValueError("a download needs a pinned 'sha256' (or 'gunzip_sha256') to verify against")
    path = Path(path)
    if path.exists():
        try:
            _check(path, expected)
            return path
        except DownloadError:
            pass  # damaged or outdated: fetch it again
    if opener is None:
        from urllib.request import urlopen as opener
    fd, tmp = _temp_file(path)
    try:
        with os.fdopen(fd, "wb") as handle, opener(url) as response:
            shutil.copyfileobj(response, handle, 1 << 20)
        _check(Path(tmp), expected)
        os.replace(tmp, path)
    except DownloadError:
        Path(tmp).unlink(missing_ok=True)
        raise
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, Exception):
            raise DownloadError(f"download of {url} failed: {type(err).__name__}: {err}") from err
        raise
    return path
