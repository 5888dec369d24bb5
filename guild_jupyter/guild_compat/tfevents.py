"""Scalars from TensorBoard event files, in pure Python.

An event file is a TFRecord stream: ``uint64 length, uint32 crc, data, uint32 crc``
per record; each record is an ``Event`` protobuf: ``wall_time`` (field 1, double),
``step`` (2, int64), ``summary`` (5) holding repeated ``value`` (1) entries with
``tag`` (1) and ``simple_value`` (2, float) or a scalar ``tensor`` (8). That small
subset is all Guild writes for scalars, so no TensorFlow/tensorboard is needed.
A truncated last record (a run killed mid-write) ends the file quietly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path


def read_scalars(path: str | Path) -> Iterator[tuple[str, int, float, float]]:
    """``(tag, step, value, wall_time)`` for every scalar in the file."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, pos)
        start = pos + 12
        end = start + length
        if end + 4 > len(data):
            break
        yield from _event(data[start:end])
        pos = end + 4


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    i = 0
    n = len(buf)
    while i < n:
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = _varint(buf, i)
        elif wire == 1:
            v = buf[i : i + 8]
            i += 8
        elif wire == 2:
            ln, i = _varint(buf, i)
            v = buf[i : i + ln]
            i += ln
        elif wire == 5:
            v = buf[i : i + 4]
            i += 4
        else:
            return
        yield field, wire, v


def _event(buf: bytes) -> Iterator[tuple[str, int, float, float]]:
    wall, step, summaries = 0.0, 0, []
    for field, wire, v in _fields(buf):
        if field == 1 and wire == 1:
            (wall,) = struct.unpack("<d", v)  # type: ignore[arg-type]
        elif field == 2 and wire == 0:
            step = v if v < (1 << 63) else v - (1 << 64)  # type: ignore[operator]
        elif field == 5 and wire == 2:
            summaries.append(v)
    for summary in summaries:
        for field, wire, value in _fields(summary):  # type: ignore[arg-type]
            if field == 1 and wire == 2:
                hit = _value(value)  # type: ignore[arg-type]
                if hit is not None:
                    yield hit[0], int(step), hit[1], wall


def _value(buf: bytes) -> tuple[str, float] | None:
    tag, value = None, None
    for field, wire, v in _fields(buf):
        if field == 1 and wire == 2:
            tag = v.decode("utf-8", "replace")  # type: ignore[union-attr]
        elif field == 2 and wire == 5:
            (value,) = struct.unpack("<f", v)  # type: ignore[arg-type]
        elif field == 8 and wire == 2 and value is None:
            value = _tensor_scalar(v)  # type: ignore[arg-type]
    if tag is None or value is None:
        return None
    return tag, float(value)


def _tensor_scalar(buf: bytes) -> float | None:
    # TensorProto: dtype (1), float_val (5, packed), double_val (6, packed), tensor_content (4)
    dtype = None
    content = None
    for field, wire, v in _fields(buf):
        if field == 1 and wire == 0:
            dtype = v
        elif field == 5 and wire == 2 and len(v) >= 4:  # type: ignore[arg-type]
            return struct.unpack_from("<f", v)[0]  # type: ignore[arg-type]
        elif field == 5 and wire == 5:
            return struct.unpack("<f", v)[0]  # type: ignore[arg-type]
        elif field == 6 and wire == 2 and len(v) >= 8:  # type: ignore[arg-type]
            return struct.unpack_from("<d", v)[0]  # type: ignore[arg-type]
        elif field == 4 and wire == 2:
            content = v
    if content is not None:
        if dtype == 1 and len(content) == 4:  # type: ignore[arg-type]
            return struct.unpack("<f", content)[0]  # type: ignore[arg-type]
        if dtype == 2 and len(content) == 8:  # type: ignore[arg-type]
            return struct.unpack("<d", content)[0]  # type: ignore[arg-type]
    return None
