"""PNG images written without an image library (small quicklook stand-ins for the
embedded samples)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np


def write_grey_png(path: Path, pixels: np.ndarray) -> Path:
    """Write an 8-bit grey PNG of ``pixels`` (rows × columns, values 0–255)."""
    rows = np.asarray(pixels, dtype=np.uint8)
    height, width = rows.shape
    raw = b"".join(b"\x00" + r.tobytes() for r in rows)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + \
            struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(
        ">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b""))
    return Path(path)
