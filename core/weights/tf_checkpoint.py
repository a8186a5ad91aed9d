"""Read TensorFlow 2 checkpoints (tensor bundles) without TensorFlow.

A checkpoint ``ckpt-N`` is an index file (``ckpt-N.index``, a LevelDB-format SSTable that
maps each variable name to a ``BundleEntryProto``: dtype, shape, shard, offset, size) and
one or more data shards holding the raw little-endian tensor bytes. Users of the app hold
the authors' published checkpoints but not TensorFlow (which is heavy and, for the TF
versions the authors used, no longer installs), so we parse the few formats involved here.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import CheckpointImportError

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
# tensorflow/core/framework/types.proto enum values we may meet in a checkpoint.
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
           9: np.int64, 10: np.bool_, 14: np.uint16, 19: np.float16}
DT_STRING = 7


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Decode a protobuf message into (field number, value) pairs (varint / bytes / fixed)."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = buf[pos : pos + length]
            if len(value) != length:
                raise ValueError("truncated length-delimited field")
            pos += length
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    return fields


def _parse_entry(name: str, value: bytes) -> TensorEntry:
    dtype = shard = offset = size = 0
    shape: list[int] = []
    for number, v in _proto_fields(value):
        if number == 1:
            dtype = int(v)  # type: ignore[arg-type]
        elif number == 2:
            for dim_number, dim in _proto_fields(v):  # type: ignore[arg-type]
                if dim_number == 2:
                    size_fields = dict(_proto_fields(dim))  # type: ignore[arg-type]
                    shape.append(int(size_fields.get(1, 0)))  # type: ignore[arg-type]
        elif number == 3:
            shard = int(v)  # type: ignore[arg-type]
        elif number == 4:
            offset = int(v)  # type: ignore[arg-type]
        elif number == 5:
            size = int(v)  # type: ignore[arg-type]
    return TensorEntry(name, dtype, tuple(shape), shard, offset, size)


def _block_entries(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """Key/value pairs of one SSTable block (prefix-compressed keys, restart array at the end)."""
    block = data[offset : offset + size]
    trailer = data[offset + size : offset + size + 5]
    if len(block) != size or len(trailer) != 5:
        raise ValueError("index block runs past the end of the file")
    if trailer[0] != 0:
        raise ValueError(f"compressed index block (type {trailer[0]}) is not supported")
    (num_restarts,) = struct.unpack_from("<I", block, size - 4)
    end = size - 4 - 4 * num_restarts
    entries: list[tuple[bytes, bytes]] = []
    pos, key = 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def read_index(index_path: Path) -> tuple[int, dict[str, TensorEntry]]:
    """Parse ``*.index``: returns (number of data shards, entries by variable name)."""
    data = index_path.read_bytes()
    if len(data) < _FOOTER_SIZE:
        raise ValueError("index file is too short to be a TensorFlow checkpoint index")
    footer = data[-_FOOTER_SIZE:]
    if struct.unpack("<Q", footer[-8:])[0] != _TABLE_MAGIC:
        raise ValueError("not a TensorFlow checkpoint index (bad table magic)")
    pos = 0
    _meta_off, pos = _varint(footer, pos)
    _meta_size, pos = _varint(footer, pos)
    index_off, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    entries: dict[str, TensorEntry] = {}
    num_shards = 1
    for _last_key, handle in _block_entries(data, index_off, index_size):
        block_off, p = _varint(handle, 0)
        block_size, _ = _varint(handle, p)
        for key, value in _block_entries(data, block_off, block_size):
            if key == b"":
                header = dict(_proto_fields(value))
                num_shards = int(header.get(1, 1)) or 1  # type: ignore[arg-type]
                continue
            name = key.decode("utf-8")
            entries[name] = _parse_entry(name, value)
    return num_shards, entries


def resolve_prefix(path: str | Path) -> Path:
    """Accept a checkpoint directory, a prefix (``.../ckpt-7``) or one of its files."""
    p = Path(path)
    if p.is_dir():
        state = p / "checkpoint"
        if state.is_file():
            m = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(errors="replace"), re.M)
            if m:
                prefix = Path(m.group(1))
                return prefix if prefix.is_absolute() else p / prefix
        indexes = sorted(p.glob("*.index"), key=lambda f: [int(t) if t.isdigit() else t
                                                            for t in re.split(r"(\d+)", f.name)])
        if not indexes:
            raise CheckpointImportError(p, "no TensorFlow checkpoint in this folder (no 'checkpoint' or *.index file)")
        return indexes[-1].with_suffix("")
    if p.suffix == ".index":
        return p.with_suffix("")
    m = re.match(r"(.*)\.data-\d{5}-of-\d{5}$", p.name)
    if m:
        return p.with_name(m.group(1))
    return p


class TFCheckpoint:
    """Random access to the tensors of one checkpoint prefix."""

    def __init__(self, path: str | Path) -> None:
        self.prefix = resolve_prefix(path)
        index = self.prefix.with_name(self.prefix.name + ".index")
        if not index.is_file():
            raise CheckpointImportError(path, f"checkpoint index {index.name} not found")
        try:
            self.num_shards, self.entries = read_index(index)
        except (ValueError, struct.error, UnicodeDecodeError) as exc:
            raise CheckpointImportError(index, f"unreadable checkpoint index: {exc}") from None

    def shard_path(self, shard: int) -> Path:
        return self.prefix.with_name(f"{self.prefix.name}.data-{shard:05d}-of-{self.num_shards:05d}")

    def names(self) -> list[str]:
        return list(self.entries)

    def read(self, name: str) -> np.ndarray:
        entry = self.entries[name]
        if entry.dtype not in _DTYPES:
            raise CheckpointImportError(self.prefix, f"variable {name} has unsupported dtype {entry.dtype}")
        dtype = np.dtype(_DTYPES[entry.dtype]).newbyteorder("<")
        count = int(np.prod(entry.shape)) if entry.shape else 1
        if count * dtype.itemsize != entry.size:
            raise CheckpointImportError(
                self.prefix, f"variable {name}: {entry.size} bytes do not fit shape {entry.shape}"
            )
        shard = self.shard_path(entry.shard)
        try:
            with open(shard, "rb") as f:
                f.seek(entry.offset)
                raw = f.read(entry.size)
        except OSError as exc:
            raise CheckpointImportError(shard, f"cannot read checkpoint data: {exc.strerror or exc}") from None
        if len(raw) != entry.size:
            raise CheckpointImportError(shard, f"checkpoint data is truncated (variable {name})")
        return np.frombuffer(raw, dtype=dtype).reshape(entry.shape).astype(dtype.newbyteorder("="))
