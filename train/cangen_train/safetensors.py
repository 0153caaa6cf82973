"""The safetensors file format, written and read by hand (Debian has no `safetensors` package):
8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, raw
little-endian data. Floating tensors are written as F32 and integer tensors as I64; F32, F16, BF16,
F64 and I64 are read."""
import json
import os
import struct

import numpy as np
import torch

from .errors import ModelFormatError

_READ_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}


def write_safetensors(path, tensors, metadata=None):
    header, chunks, offset = {"__metadata__": {k: str(v) for k, v in (metadata or {"format": "pt"}).items()}}, [], 0
    for name, t in tensors.items():
        integer = not torch.is_floating_point(t)
        array = t.detach().contiguous().cpu().numpy()
        data = array.astype("<i8" if integer else "<f4").tobytes()
        header[name] = {"dtype": "I64" if integer else "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header)
    text += " " * ((8 - (len(text) + 8) % 8) % 8)  # data starts 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def read_safetensors(path):
    """{name: float32 (int64 for I64) tensor}; a truncated or inconsistent file raises ModelFormatError."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ModelFormatError(f"{path}: cannot read ({e.strerror})") from None
    if len(raw) < 8:
        raise ModelFormatError(f"{path}: truncated (no header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ModelFormatError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            words = np.frombuffer(raw[base + start:base + end], dtype="<u2").astype(np.uint32) << 16
            array = words.view(np.float32)
        elif info["dtype"] in _READ_DTYPES:
            array = np.frombuffer(raw[base + start:base + end], dtype=np.dtype(_READ_DTYPES[info["dtype"]]).newbyteorder("<"))
        else:
            raise ModelFormatError(f"{path}: tensor '{name}' has unsupported dtype {info['dtype']}")
        expected = int(np.prod(info["shape"])) if info["shape"] else 1
        if array.size != expected or base + end > len(raw):
            raise ModelFormatError(f"{path}: tensor '{name}' holds {array.size} values, shape {info['shape']} needs {expected}")
        kind = np.int64 if info["dtype"] == "I64" else np.float32
        out[name] = torch.from_numpy(array.astype(kind).reshape(info["shape"]).copy())
    return out
