"""The IDX file format of MNIST: read whole files, or only their headers and sizes.

An IDX file is ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32 dimensions, then the
data; gzipped files (``.gz``) are read through :mod:`gzip`.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ceco_fair.errors import DataError

_IDX_DTYPES: Final[dict[int, str]] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_READ_CHUNK: Final = 1 << 20
_MAX_HEADER: Final = 4 + 4 * 255

IDX_BAD_MAGIC = "{path} is not an IDX file: magic bytes {magic} (expected 00 00 <type> <ndim>)"
IDX_TRUNCATED = "{path} is truncated: its header announces dims {dims} = {expected} data bytes but {actual} are present"
IDX_SHORT_HEADER = "{path} is truncated: its header needs {needed} bytes but only {actual} exist"
IDX_TRAILING = "{path} is malformed: its header announces dims {dims} = {expected} data bytes but {actual} are present"
IDX_BAD_GZIP = "{path} is not a complete gzip file: {reason}"


def find_idx_file(folder: Path, name: str) -> Path | None:
    """Locate an IDX file stored plain or gzipped.

    Args:
        folder: Folder to look in.
        name: File name without ``.gz``.

    Returns:
        The plain file if present, else the ``.gz`` file if present, else ``None``.

    """
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _open_idx(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _parse_header(path: Path, head: bytes) -> tuple[np.dtype[np.generic], tuple[int, ...], int]:
    """Decode an IDX header: ``(dtype, dims, header length)``."""
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
        raise DataError(IDX_BAD_MAGIC.format(path=path, magic=head[:4].hex(" ") or "(empty)"))
    ndim = head[3]
    header_length = 4 + 4 * ndim
    if len(head) < header_length:
        raise DataError(IDX_SHORT_HEADER.format(path=path, needed=header_length, actual=len(head)))
    dims = struct.unpack(f">{ndim}I", head[4:header_length])
    return np.dtype(_IDX_DTYPES[head[2]]), tuple(int(d) for d in dims), header_length


def _data_bytes(dtype: np.dtype[np.generic], dims: tuple[int, ...]) -> int:
    return int(np.prod(dims, dtype=np.int64)) * dtype.itemsize


def _check_payload(path: Path, dims: tuple[int, ...], expected: int, actual: int) -> None:
    if actual < expected:
        raise DataError(IDX_TRUNCATED.format(path=path, dims=list(dims), expected=expected, actual=actual))
    if actual > expected:
        raise DataError(IDX_TRAILING.format(path=path, dims=list(dims), expected=expected, actual=actual))


def parse_idx(path: Path) -> npt.NDArray[np.generic]:
    """Read a whole IDX file (plain or gzipped) into an array.

    Args:
        path: The file.

    Returns:
        Array of the header's dims and type (native byte order).

    Raises:
        DataError: If the magic bytes are wrong, the gzip stream is incomplete, or the data
            length differs from what the header announces.

    """
    try:
        with _open_idx(path) as handle:
            raw = handle.read()
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(IDX_BAD_GZIP.format(path=path, reason=exc)) from exc
    dtype, dims, header_length = _parse_header(path, raw[:_MAX_HEADER])
    expected = _data_bytes(dtype, dims)
    _check_payload(path, dims, expected, len(raw) - header_length)
    array = np.frombuffer(raw, dtype=dtype, offset=header_length).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def _stream_length(path: Path) -> int:
    try:
        total = 0
        with gzip.open(path, "rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                total += len(chunk)
        return total
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(IDX_BAD_GZIP.format(path=path, reason=exc)) from exc


def inspect_idx(path: Path) -> tuple[tuple[int, ...], np.dtype[np.generic]]:
    """Check an IDX file's completeness without decoding its data.

    A plain file's size is compared with its header. A gzipped file's uncompressed size is read
    from the gzip trailer; only when that disagrees (multi-member or damaged files) is the
    stream decompressed to count its bytes.

    Args:
        path: The file.

    Returns:
        ``(dims, dtype)`` from the header.

    Raises:
        DataError: If the header is invalid or the data is shorter or longer than announced.

    """
    try:
        with _open_idx(path) as handle:
            head = handle.read(_MAX_HEADER)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(IDX_BAD_GZIP.format(path=path, reason=exc)) from exc
    dtype, dims, header_length = _parse_header(path, head)
    expected = _data_bytes(dtype, dims)
    if path.suffix != ".gz":
        _check_payload(path, dims, expected, path.stat().st_size - header_length)
        return dims, dtype
    with path.open("rb") as raw:
        raw.seek(-4, os.SEEK_END)
        trailer_size = struct.unpack("<I", raw.read(4))[0]
    if trailer_size == (header_length + expected) % (1 << 32):
        return dims, dtype
    _check_payload(path, dims, expected, _stream_length(path) - header_length)
    return dims, dtype
