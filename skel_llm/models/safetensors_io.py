"""Streaming safetensors reader and writer on numpy (no torch), bfloat16 via ml_dtypes.

A safetensors file is an 8-byte little-endian header length, a JSON header mapping each
tensor name to {dtype, shape, data_offsets} (plus optional `__metadata__`), then the raw
bytes. Reading memory-maps the file and returns one tensor at a time.
"""

from __future__ import annotations

import json
import pathlib
import struct
from collections.abc import Iterator

import ml_dtypes
import numpy as np

_DTYPES = {
    "F64": np.dtype(np.float64), "F32": np.dtype(np.float32), "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16), "I64": np.dtype(np.int64), "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16), "I8": np.dtype(np.int8), "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_NAMES = {v: k for k, v in _DTYPES.items()}


def read_header(path: pathlib.Path) -> tuple[dict, int]:
  """(tensor table, byte offset of the data section) of one safetensors file."""
  with open(path, "rb") as f:
    raw = f.read(8)
    if len(raw) != 8:
      raise ValueError(f"{path}: not a safetensors file (shorter than 8 bytes)")
    (n,) = struct.unpack("<Q", raw)
    try:
      header = json.loads(f.read(n))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
      raise ValueError(f"{path}: unreadable safetensors header ({e})") from e
  header.pop("__metadata__", None)
  return header, 8 + n


def iter_tensors(path: str | pathlib.Path) -> Iterator[tuple[str, np.ndarray]]:
  """Yields (name, array) for every tensor of the file, reading each one on demand."""
  path = pathlib.Path(path)
  header, start = read_header(path)
  data = np.memmap(path, dtype=np.uint8, mode="r")
  for name, info in header.items():
    if info["dtype"] not in _DTYPES:
      raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
    begin, end = info["data_offsets"]
    arr = np.frombuffer(data[start + begin:start + end], dtype=_DTYPES[info["dtype"]])
    yield name, np.array(arr.reshape(info["shape"]))  # Copy: detach from the memory map.


def write(path: str | pathlib.Path, tensors: dict[str, np.ndarray],
          metadata: dict[str, str] | None = None) -> None:
  """Writes `tensors` (name -> array) as one safetensors file."""
  header: dict = {"__metadata__": metadata or {"format": "pt"}}
  offset = 0
  arrays = []
  for name, arr in tensors.items():
    arr = np.ascontiguousarray(arr)
    if arr.dtype not in _NAMES:
      raise ValueError(f"safetensors write: tensor {name} has unsupported dtype {arr.dtype}")
    header[name] = {"dtype": _NAMES[arr.dtype], "shape": list(arr.shape),
                    "data_offsets": [offset, offset + arr.nbytes]}
    offset += arr.nbytes
    arrays.append(arr)
  raw = json.dumps(header, separators=(",", ":")).encode()
  raw += b" " * (-len(raw) % 8)  # Align the data section to 8 bytes.
  with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(raw)))
    f.write(raw)
    for arr in arrays:
      f.write(arr.tobytes())
