"""A small reader of Mapbox Vector Tiles (protobuf) for the map's tests: layer names and each
feature's attributes, enough to check what a tile holds without a vendor decoder."""

from __future__ import annotations

import struct


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes):
    """(field number, wire type, value) of one message; bytes for length-delimited."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"wire type {wire} is not in MVT")
        yield number, wire, value


def _value(data: bytes) -> object:
    for number, _, raw in _fields(data):
        if number == 1:
            return raw.decode()
        if number == 2:
            return struct.unpack("<f", raw)[0]
        if number == 3:
            return struct.unpack("<d", raw)[0]
        if number in (4, 5):
            return raw
        if number == 6:
            return (raw >> 1) ^ -(raw & 1)
        if number == 7:
            return bool(raw)
    return None


def _packed(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        out.append(value)
    return out


def decode(tile: bytes) -> dict[str, list[dict]]:
    """{layer name: [feature attributes]}."""
    layers: dict[str, list[dict]] = {}
    for number, _, layer in _fields(tile):
        if number != 3:
            continue
        name, keys, values, features = "", [], [], []
        for field, _, raw in _fields(layer):
            if field == 1:
                name = raw.decode()
            elif field == 2:
                features.append(raw)
            elif field == 3:
                keys.append(raw.decode())
            elif field == 4:
                values.append(_value(raw))
        decoded = []
        for feature in features:
            tags = next((_packed(raw) for f, _, raw in _fields(feature) if f == 2), [])
            decoded.append({keys[k]: values[v] for k, v in zip(tags[::2], tags[1::2],
                                                                 strict=True)})
        layers[name] = decoded
    return layers
