"""What an encoded image declares about itself, read from its headers without decoding it.

Decoders trust these headers: they allocate the declared size (a PNG chunk length of
0xFFFFFFFF made OpenCV reserve 4 GiB) and GDCM aborts the whole process when a JPEG 2000
codestream's component count disagrees with the DICOM header. Reading the few header bytes
here first lets the loader refuse such files with a reason, before any native code runs.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_CRITICAL = (b"IHDR", b"PLTE", b"IDAT", b"IEND")
_MAX_CHUNK = (1 << 31) - 1  # PNG spec: chunk lengths and dimensions are below 2**31
_J2K_MAX_TILES = 65535  # Isot, the tile index, is 16 bits


class DeclarationError(ValueError):
    """The header is malformed or declares something impossible; the message says what."""


@dataclass(frozen=True)
class Frame:
    """Declared geometry of an encoded image."""

    width: int
    height: int
    components: int
    bits: int  # sample precision (largest over the components)


def png_frame(data: bytes) -> Frame:
    """IHDR of a PNG, after checking every chunk length fits the file and critical checksums hold."""
    if not data.startswith(PNG_MAGIC):
        raise DeclarationError("not a PNG file")
    pos, first, ended = len(PNG_MAGIC), True, False
    frame: Frame | None = None
    while pos < len(data) and not ended:
        if pos + 8 > len(data):
            raise DeclarationError("PNG file is truncated (a chunk header is cut short)")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if length > _MAX_CHUNK:
            raise DeclarationError(f"PNG chunk {_chunk_name(kind)} declares an impossible length ({length} bytes)")
        end = pos + 12 + length
        if end > len(data):
            raise DeclarationError(f"PNG chunk {_chunk_name(kind)} declares {length} bytes, more than the file holds "
                                   "(file truncated or corrupt)")
        body = data[pos + 8:pos + 8 + length]
        if kind in _PNG_CRITICAL:
            (crc,) = struct.unpack(">I", data[pos + 8 + length:end])
            if zlib.crc32(kind + body) != crc:
                raise DeclarationError(f"PNG data cannot be decoded (chunk {_chunk_name(kind)} is corrupt: "
                                       "checksum mismatch)")
        if first:
            if kind != b"IHDR" or length != 13:
                raise DeclarationError("PNG file does not start with a valid image header (IHDR)")
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            if not 0 < width <= _MAX_CHUNK or not 0 < height <= _MAX_CHUNK:
                raise DeclarationError(f"PNG header declares an invalid size ({width}x{height})")
            channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color)
            if channels is None or depth not in (1, 2, 4, 8, 16):
                raise DeclarationError(f"PNG header declares an invalid pixel format (color type {color}, "
                                       f"bit depth {depth})")
            frame = Frame(width, height, channels, depth)
            first = False
        ended = kind == b"IEND"
        pos = end
    if frame is None:
        raise DeclarationError("PNG file has no image header")
    return frame


def _chunk_name(kind: bytes) -> str:
    text = kind.decode("latin-1")
    return text if text.isalpha() else repr(kind)


# JPEG (ITU T.81) and JPEG-LS (T.87) frame headers: SOF0..SOF15 except DHT, JPG and DAC; SOF55.
_SOF = {m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC)} | {0xF7}
_STANDALONE = set(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM


def jpeg_frame(data: bytes) -> Frame:
    """The frame header (SOF) of a JPEG or JPEG-LS codestream."""
    if not data.startswith(b"\xff\xd8"):
        raise DeclarationError("JPEG codestream does not start with a start-of-image marker")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise DeclarationError("JPEG codestream is corrupt (marker expected)")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _STANDALONE:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        if length < 2:
            raise DeclarationError("JPEG codestream is corrupt (bad marker segment length)")
        if marker in _SOF:
            if length < 8 or pos + 10 > len(data):
                raise DeclarationError("JPEG frame header is truncated")
            bits, height, width, components = struct.unpack(">BHHB", data[pos + 4:pos + 10])
            if height == 0 or width == 0 or components == 0:
                raise DeclarationError(f"JPEG frame header declares an empty image ({width}x{height}, "
                                       f"{components} components)")
            return Frame(width, height, components, bits)
        if marker == 0xDA:
            break
        pos += 2 + length
    raise DeclarationError("JPEG codestream has no frame header (truncated or corrupt)")


def j2k_frame(data: bytes) -> Frame:
    """The image and tile size (SIZ) of a JPEG 2000 codestream (bare, or inside a JP2 file)."""
    pos = data.find(b"\xff\x4f\xff\x51", 0, 1 << 16)
    if pos < 0:
        raise DeclarationError("JPEG 2000 codestream has no image header (SIZ marker)")
    siz = data[pos + 4:]
    if len(siz) < 38:
        raise DeclarationError("JPEG 2000 image header is truncated")
    (length, _rsiz, xsiz, ysiz, xo, yo, xt, yt, xto, yto, csiz) = struct.unpack(">HHIIIIIIIIH", siz[:38])
    if csiz == 0 or csiz > 16384 or length != 38 + 3 * csiz or len(siz) < length:
        raise DeclarationError(f"JPEG 2000 image header is corrupt ({csiz} components, length {length})")
    width, height = xsiz - xo, ysiz - yo
    if xsiz <= xo or ysiz <= yo or xt == 0 or yt == 0 or xto > xo or yto > yo:
        raise DeclarationError(f"JPEG 2000 image header declares an invalid geometry ({width}x{height}, "
                               f"tiles {xt}x{yt})")
    tiles = -(-(xsiz - xto) // xt) * -(-(ysiz - yto) // yt)
    if tiles > _J2K_MAX_TILES:
        raise DeclarationError(f"JPEG 2000 image header declares {tiles} tiles (at most {_J2K_MAX_TILES} allowed)")
    bits = 0
    for i in range(csiz):
        ssiz, dx, dy = siz[38 + 3 * i:41 + 3 * i]
        if dx == 0 or dy == 0:
            raise DeclarationError("JPEG 2000 image header declares a component with zero sampling")
        bits = max(bits, (ssiz & 0x7F) + 1)
    return Frame(width, height, csiz, bits)
