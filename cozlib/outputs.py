"""Where cozlib writes, and the rules it keeps there.

- Every file is written to a temp file beside it and renamed into place; every folder is built as a
  temp folder and renamed into place: an output is complete or absent, never half-written.
- Every output folder cozlib makes holds a marker file, ``.cozlib``, naming its kind (a zoom chain,
  weights, a data set, ...). A folder without it is the user's, and one of another kind is another
  command's: neither is ever replaced or removed (``OutputError`` instead).
- Temp files and folders carry the writing process's id; one left by a process that died is removed
  by the next write to the same place. On SIGINT / SIGTERM the running write removes its own.
- Two runs writing the same folder at once both finish: the last rename wins.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator

from .errors import OutputError

#: The marker file in every folder cozlib writes.
MARKER = ".cozlib"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _marker(folder: Path) -> dict | None:
    if not folder.is_dir() or folder.is_symlink() or not (folder / MARKER).is_file():
        return None
    try:
        data = json.loads((folder / MARKER).read_text())
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def marker_kind(folder: str | os.PathLike) -> str | None:
    """The kind a cozlib folder's marker names; None when ``folder`` is not a folder cozlib wrote."""
    data = _marker(Path(folder))
    return None if data is None else str(data.get("kind", ""))


def listing_digest(folder: Path) -> tuple[int, str]:
    """(number of files, a hash of their relative paths and sizes) under ``folder``, the marker left out:
    what a folder held when cozlib finished it."""
    import hashlib
    h, n = hashlib.sha256(), 0
    for p in sorted(folder.rglob("*")):
        if p.name == MARKER and p.parent == folder or not (p.is_file() or p.is_symlink()):
            continue
        n += 1
        h.update(f"{p.relative_to(folder)}\0{p.lstat().st_size}\n".encode())
    return n, h.hexdigest()[:16]


def seal(folder: Path, kind: str) -> None:
    """Write the marker of a finished folder: its kind and what it holds (``listing_digest``)."""
    n, digest = listing_digest(folder)
    (folder / MARKER).write_text(json.dumps({"written_by": "cozlib", "kind": kind, "files": n, "digest": digest}) + "\n")


def owned(folder: str | os.PathLike, kind: str | None = None) -> bool:
    """Whether ``folder`` is a folder cozlib wrote (of ``kind``, when given)."""
    found = marker_kind(folder)
    return found is not None and (kind is None or found == kind)


def _inode(p: Path) -> int | None:
    try:
        return p.lstat().st_ino
    except FileNotFoundError:
        return None


def check_replaceable(path: str | os.PathLike, kind: str = "output") -> None:
    """An ``OutputError`` unless ``path`` is absent or a cozlib folder of ``kind`` (which may be replaced).
    A concurrent run may swap the folder while it is read (marker, then listing): the check is then
    read again, so a folder is judged by one consistent look."""
    p = Path(path)
    for _ in range(20):
        before = _inode(p)
        try:
            _check_replaceable_once(p, kind)
            return
        except (OutputError, FileNotFoundError):
            if _inode(p) == before:
                raise  # the same folder both times: the verdict stands
            time.sleep(0.05)  # swapped meanwhile by another run into the same folder: look again
    _check_replaceable_once(p, kind)


def _check_replaceable_once(p: Path, kind: str) -> None:
    if p.is_symlink():
        raise OutputError(f"{p} is a symbolic link; cozlib does not write through links. Remove it or choose "
                          f"another output folder")
    if not p.exists():
        return
    if not p.is_dir():
        raise OutputError(f"{p} exists and is a file, not a folder; move it away or choose another output folder")
    data = _marker(p)
    if data is None:
        raise OutputError(f"{p} exists and was not written by cozlib (it has no {MARKER} marker), so cozlib will "
                          f"not replace it; choose another output folder or move it away yourself")
    found = str(data.get("kind", ""))
    if found != kind:
        raise OutputError(f"{p} holds a cozlib output of another kind ({found or 'unknown'}, not {kind}), so cozlib "
                          f"will not replace it; choose another output folder")
    if "digest" in data and listing_digest(p) != (data.get("files"), data.get("digest")):
        raise OutputError(f"{p} holds files cozlib did not write there (or changed ones), so cozlib will not replace "
                          f"it; move them away or choose another output folder")


def check_not_inside_output(folder: str | os.PathLike, flag: str = "--out") -> None:
    """An ``OutputError`` when ``folder`` lies inside a folder cozlib wrote (weights, a data set, ...):
    that folder is replaced whole when it is made again, so nothing of the user's belongs in it."""
    p = Path(folder).resolve()
    for parent in (p, *p.parents):
        kind = marker_kind(parent)
        if kind is not None:
            raise OutputError(f"{flag} {folder} lies inside {parent}, a cozlib output ({kind}) that is replaced whole "
                              f"when it is made again; choose a folder of your own")


def check_writable_dir(folder: str | os.PathLike, flag: str = "--out") -> Path:
    """``folder`` as an output root: it, or the nearest folder above it that exists, must be a writable
    folder. Nothing is created. Returns the path."""
    if str(folder).strip() == "":
        raise OutputError(f"{flag} is empty; give a folder to write into, e.g. {flag} out/")
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise OutputError(f"{flag} {p} is a file, not a folder; give a folder to write into")
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{flag} {p}: {probe} is a file, so no folder can be made there")
    if not os.access(probe, os.W_OK | os.X_OK) or _read_only(probe):
        raise OutputError(f"{flag} {p}: {probe} is not writable (read-only file system or no permission); "
                          f"choose a writable folder")
    if _pseudo_fs(probe):
        raise OutputError(f"{flag} {p}: {probe} is a kernel file system (/proc, /sys, /dev), not a place for "
                          f"files; choose another folder")
    return p


def check_output_folders(*folders: str | os.PathLike, work: str | os.PathLike | None = None,
                         kind: str = "weights") -> None:
    """Before a long run: each output folder can be written (its parent writable) and is absent or
    cozlib's of ``kind``; ``work`` (checkpoints, caches) can be written and is apart from them."""
    resolved = [Path(f).resolve() for f in folders]
    for i, a in enumerate(resolved):
        for b in resolved[i + 1:]:
            if a == b or a in b.parents or b in a.parents:
                raise OutputError(f"two output folders overlap ({a} and {b}); each is replaced whole at the end, so "
                                  f"give them different places")
    for f in folders:
        check_writable_dir(Path(f).parent if str(Path(f).parent) else ".", "output folder")
        check_not_inside_output(Path(f).parent, "output folder")
        check_replaceable(f, kind)
    if work is not None:
        check_writable_dir(work, "work folder")
        w = Path(work).resolve()
        for f in folders:
            o = Path(f).resolve()
            if w == o or o in w.parents or w in o.parents:
                raise OutputError(f"the work folder {work} and the output folder {f} overlap; the output is replaced "
                                  f"whole at the end, so keep them apart (e.g. --set work=build/train/...)")


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _pseudo_fs(path: Path) -> bool:
    resolved = path.resolve()
    return any(resolved == Path(r) or Path(r) in resolved.parents for r in ("/proc", "/sys", "/dev"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(name: str, prefix: str) -> bool:
    """Whether temp ``name`` (``prefix`` + pid + '-' + random) belongs to a process that is gone."""
    rest = name[len(prefix):]
    pid = rest.split("-", 1)[0].split(".", 1)[0]
    return pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid))


def remove_stale_temps(parent: Path, prefix: str) -> None:
    """Remove temp files and folders named ``prefix<pid>-...`` in ``parent`` whose process has died
    (a SIGKILL leaves them); folders only when they hold the marker (they are cozlib's)."""
    if not parent.is_dir():
        return
    for p in parent.iterdir():
        if not p.name.startswith(prefix) or not _stale(p.name, prefix):
            continue
        if p.is_dir() and not p.is_symlink():
            if (p / MARKER).is_file():
                shutil.rmtree(p, ignore_errors=True)
        elif p.name.endswith((".tmp", ".tmp.ipynb")):
            with contextlib.suppress(OSError):
                p.unlink()


def temp_prefix(name: str) -> str:
    """The temp-folder prefix for an output named ``name``, short enough for any file system."""
    return f".tmp-{name[:80]}-"


def make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones created (deepest last)."""
    missing = []
    p = Path(folder)
    while not p.exists() and p.parent != p:
        missing.append(p)
        p = p.parent
    Path(folder).mkdir(parents=True, exist_ok=True)
    return list(reversed(missing))


def remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders a failed write created, deepest first, when nothing else is in them."""
    for f in reversed(folders):
        with contextlib.suppress(OSError):
            f.rmdir()


def temp_dir(parent: str | os.PathLike, prefix: str, kind: str = "output") -> Path:
    """A temporary folder ``prefix<pid>-<random>`` inside ``parent``, with the marker of ``kind`` and
    the usual permissions (mkdtemp makes 0700 folders)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f"{prefix}{os.getpid()}-"))
    os.chmod(tmp, 0o777 & ~_umask())
    (tmp / MARKER).write_text(json.dumps({"written_by": "cozlib", "kind": kind}) + "\n")
    return tmp


def _swap_into_place(tmp: Path, final: Path, kind: str) -> None:
    """Rename ``tmp`` to ``final``; a ``final`` of cozlib's (ours, or a concurrent run's) is moved
    aside first and removed after. A user's folder appearing meanwhile stops with ``OutputError``."""
    for attempt in range(50):
        try:
            os.rename(tmp, final)
            return
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR, errno.ENOTDIR):
                raise
        check_replaceable(final, kind)
        old = final.parent / f".old-{final.name}-{os.getpid()}-{attempt}"
        try:
            os.rename(final, old)
        except FileNotFoundError:
            continue  # another run moved it first
        try:
            os.rename(tmp, final)
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                os.rename(old, final)  # put it back: nothing is lost
                raise
            shutil.rmtree(old, ignore_errors=True)
            continue
        shutil.rmtree(old, ignore_errors=True)
        return
    raise OutputError(f"{final}: other runs kept replacing it; run one at a time into that folder")


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, prefix: str | None = None, kind: str = "output") -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; when the block ends without error it replaces
    ``final`` whole (which must be absent or a cozlib folder of ``kind``), otherwise it is removed,
    with any parent folder it had to create."""
    final = Path(final)
    check_replaceable(final, kind)
    prefix = prefix or temp_prefix(final.name)
    remove_stale_temps(final.parent, prefix)
    created = make_parents(final.parent)
    ok = False
    try:
        tmp = temp_dir(final.parent, prefix, kind)
        try:
            yield tmp
            seal(tmp, kind)
            _swap_into_place(tmp, final, kind)
            ok = True
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if not ok:
            remove_if_empty(created)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file ``.<name>.<pid>-<random>.tmp`` and a rename."""
    path = Path(path)
    if path.is_symlink() or path.is_dir():
        raise OutputError(f"{path} is a {'link' if path.is_symlink() else 'folder'}; cozlib writes files only "
                          f"where it can rename one into place. Choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    remove_stale_temps(path.parent, prefix)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{prefix}{os.getpid()}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
