"""Write TensorFlow tensor-bundle checkpoints (index SSTable + data shard) for importer tests.

Just enough of the format to build train.py-style checkpoints (extra roots, optimizer
slots) from the reference tensors, and corrupt variants of them, without TensorFlow.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

MAGIC = 0xDB4775248B80FB57
_DTYPE = {np.dtype(np.float32): 1, np.dtype(np.int64): 9}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint((number << 3) | wire)
    if wire == 0:
        return key + _varint(int(payload))
    assert isinstance(payload, bytes)
    return key + _varint(len(payload)) + payload


def _entry(dtype: int, shape: tuple[int, ...], offset: int, size: int) -> bytes:
    dims = b"".join(_field(2, 2, _field(1, 0, d)) for d in shape)
    return _field(1, 0, dtype) + _field(2, 2, dims) + _field(4, 0, offset) + _field(5, 0, size)


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
    return body + struct.pack("<I", 0) + struct.pack("<I", 1)  # one restart point at 0


def write_bundle(prefix: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write ``prefix.index`` and ``prefix.data-00000-of-00001`` plus a ``checkpoint`` file."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray()
    entries: list[tuple[bytes, bytes]] = [(b"", _field(1, 0, 1))]  # header: num_shards = 1
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        entries.append((name.encode(), _entry(_DTYPE[arr.dtype], arr.shape, len(data), len(raw))))
        data += raw
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    block = _block(entries)
    out = bytearray(block) + b"\x00" + b"\x00\x00\x00\x00"  # trailer: no compression, crc unchecked
    index_handle = _varint(0) + _varint(len(block))
    index_block = _block([(entries[-1][0] + b"\xff", index_handle)])
    index_off = len(out)
    out += index_block + b"\x00" + b"\x00\x00\x00\x00"
    meta_off = len(out)
    meta_block = _block([])
    out += meta_block + b"\x00" + b"\x00\x00\x00\x00"
    handles = _varint(meta_off) + _varint(len(meta_block)) + _varint(index_off) + _varint(len(index_block))
    footer = handles + b"\x00" * (40 - len(handles)) + struct.pack("<Q", MAGIC)
    Path(f"{prefix}.index").write_bytes(bytes(out + footer))
    (prefix.parent / "checkpoint").write_text(
        f'model_checkpoint_path: "{prefix.name}"\nall_model_checkpoint_paths: "{prefix.name}"\n')
