"""Safe reading of Debian packages (.deb) and zip archives (.sh3f, .jar).

Nothing is ever written outside the target folder: member names are normalised, absolute
names, ``..`` components, drive letters and links leading out are refused, and sizes are capped
(per member and in total) before anything is copied.
"""

from __future__ import annotations

import io
import posixpath
import re
import shutil
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from recon_cli.errors import InputError

MAX_MEMBER_BYTES = 512 * 1024 * 1024
MAX_TOTAL_BYTES = 6 * 1024 * 1024 * 1024
_AR_MAGIC = b"!<arch>\n"


def safe_relpath(name: str) -> PurePosixPath | None:
    """A member name as a relative path that stays inside its folder, or None when unsafe."""
    text = name.replace("\\", "/")
    if not text or text.startswith("/") or re.match(r"^[A-Za-z]:", text) or "\x00" in text:
        return None
    norm = posixpath.normpath(text)
    if norm in (".", "") or norm.startswith("../") or norm == ".." or norm.startswith("/"):
        return None
    parts = PurePosixPath(norm).parts
    if any(p == ".." for p in parts):
        return None
    return PurePosixPath(norm)


def _inside(dest: Path, rel: PurePosixPath) -> Path:
    target = (dest / rel).resolve()
    root = dest.resolve()
    if target != root and root not in target.parents:
        raise InputError(f"archive member {str(rel)!r} would leave the target folder", path=dest)
    return target


def _ar_members(path: Path) -> dict[str, tuple[int, int]]:
    """{name: (offset, size)} of an ar archive (the container of a .deb)."""
    members: dict[str, tuple[int, int]] = {}
    with open(path, "rb") as fh:
        if fh.read(8) != _AR_MAGIC:
            raise InputError("not a Debian package (no ar header)", path=path)
        while True:
            header = fh.read(60)
            if len(header) == 0:
                break
            if len(header) < 60 or header[58:60] != b"`\n":
                raise InputError("corrupt Debian package (bad ar member header)", path=path)
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            try:
                size = int(header[48:58].decode("ascii").strip())
            except ValueError:
                raise InputError("corrupt Debian package (bad member size)", path=path) from None
            members[name] = (fh.tell(), size)
            fh.seek(size + (size & 1), io.SEEK_CUR)
    return members


def _member_tar(path: Path, prefix: str) -> tarfile.TarFile:
    members = _ar_members(path)
    name = next((n for n in members if n.startswith(prefix)), None)
    if name is None:
        raise InputError(f"corrupt Debian package (no {prefix}* member)", path=path)
    offset, size = members[name]
    data = io.BufferedReader(_Window(open(path, "rb"), offset, size), 1 << 20)  # noqa: SIM115
    try:
        tar = tarfile.open(fileobj=data, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        data.close()
        raise InputError(f"corrupt Debian package ({name}: {exc})", path=path) from exc
    tar.fileobj_to_close = data  # type: ignore[attr-defined]
    return tar


class _closing_tar:
    """Context manager: the TarFile and the file under it."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar

    def __enter__(self) -> tarfile.TarFile:
        return self.tar

    def __exit__(self, *exc: object) -> None:
        self.tar.close()
        self.tar.fileobj_to_close.close()  # type: ignore[attr-defined]


class _Window(io.RawIOBase):
    """A read-only view of ``size`` bytes of a file from ``offset``."""

    def __init__(self, fh, offset: int, size: int) -> None:  # noqa: ANN001
        self.fh, self.offset, self.size, self.pos = fh, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, min(self.size, base + pos))
        return self.pos

    def readinto(self, b) -> int:  # noqa: ANN001
        n = min(len(b), self.size - self.pos)
        if n <= 0:
            return 0
        self.fh.seek(self.offset + self.pos)
        chunk = self.fh.read(n)
        b[:len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)

    def close(self) -> None:
        self.fh.close()
        super().close()


def deb_control(path: str | Path) -> dict[str, str]:
    """The fields of a .deb's control file (Package, Version, ...)."""
    path = Path(path)
    with _closing_tar(_member_tar(path, "control.tar")) as tar:
        for info in tar:
            if info.isfile() and posixpath.basename(info.name) == "control":
                fh = tar.extractfile(info)
                text = fh.read(1 << 20).decode("utf-8", "replace") if fh else ""
                fields: dict[str, str] = {}
                for line in text.splitlines():
                    if ":" in line and not line.startswith(" "):
                        key, _, value = line.partition(":")
                        fields[key.strip()] = value.strip()
                return fields
    raise InputError("corrupt Debian package (no control file)", path=path)


def extract_deb(path: str | Path, dest: str | Path, wanted: Callable[[str], bool], *,
                max_member: int = MAX_MEMBER_BYTES, max_total: int = MAX_TOTAL_BYTES) -> int:
    """Extract the regular files of a .deb's data.tar whose normalised name passes ``wanted``.

    Symbolic links inside the package are copied as files when their target is an extracted file;
    others are skipped. Returns the number of files written. Raises InputError on a corrupt
    package or when the caps are exceeded.
    """
    path, dest = Path(path), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written, total = 0, 0
    links: list[tuple[PurePosixPath, PurePosixPath]] = []
    try:
        with _closing_tar(_member_tar(path, "data.tar")) as tar:
            for info in tar:
                rel = safe_relpath(info.name)
                if rel is None or not wanted(str(rel)):
                    continue
                if info.issym():
                    target = safe_relpath(posixpath.join(posixpath.dirname(str(rel)), info.linkname))
                    if target is not None:
                        links.append((rel, target))
                    continue
                if not info.isfile():
                    continue
                if info.size > max_member:
                    raise InputError(f"member {rel} is larger than {max_member >> 20} MB", path=path)
                total += info.size
                if total > max_total:
                    raise InputError(f"package content exceeds {max_total >> 30} GB", path=path)
                out = _inside(dest, rel)
                out.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(info)
                if src is None:
                    continue
                with src, open(out, "wb") as fh:
                    shutil.copyfileobj(src, fh, 1 << 20)
                written += 1
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"corrupt Debian package ({type(exc).__name__}: {exc})", path=path) from exc
    for rel, target in links:
        src_file, out = _inside(dest, target), _inside(dest, rel)
        if src_file.is_file() and not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src_file, out)
            written += 1
    return written


def open_zip(path: str | Path) -> zipfile.ZipFile:
    """Open a zip archive (.sh3f, .jar); a corrupt one raises InputError."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"corrupt or unreadable archive ({type(exc).__name__}: {exc})", path=path) from exc


def read_zip_member(zf: zipfile.ZipFile, name: str, *, max_bytes: int = MAX_MEMBER_BYTES) -> bytes:
    """The bytes of one member (KeyError when absent); InputError when too large or corrupt."""
    info = zf.getinfo(name)
    if info.file_size > max_bytes:
        raise InputError(f"archive member {name} is larger than {max_bytes >> 20} MB", path=zf.filename)
    try:
        with zf.open(info) as fh:
            data = fh.read(max_bytes + 1)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:  # zlib errors subclass these
        raise InputError(f"corrupt archive member {name} ({type(exc).__name__})", path=zf.filename) from exc
    except Exception as exc:  # noqa: BLE001 - zlib.error is not an OSError
        raise InputError(f"corrupt archive member {name} ({type(exc).__name__})", path=zf.filename) from exc
    if len(data) > max_bytes:
        raise InputError(f"archive member {name} is larger than {max_bytes >> 20} MB", path=zf.filename)
    return data


def extract_zip_files(zf: zipfile.ZipFile, names: list[str], dest: Path) -> list[Path]:
    """Write the members ``names`` (relative layout kept) under ``dest``; unsafe names are refused."""
    out = []
    for name in names:
        rel = safe_relpath(name)
        if rel is None:
            raise InputError(f"unsafe archive member name {name!r}", path=zf.filename)
        target = _inside(dest, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(read_zip_member(zf, name))
        out.append(target)
    return out
