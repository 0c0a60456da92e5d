"""The weight files of a checkpoint folder, read and written with the `safetensors` library.

Reading: `weight_files(folder)` lists the files (from `model.safetensors.index.json` when the
folder has one, as transformers writes it, else every `*.safetensors`); the loader opens one
at a time with `safetensors.safe_open` and reads each tensor through `get_slice`, so a host
reads only the slices its own devices hold.

Writing: `ShardedWriter` collects tensors one at a time and writes a file whenever the
tensors held reach `max_shard_bytes`; with more than one file it names them
`model-0000i-of-0000n.safetensors` and writes the index (`metadata.total_size`, `weight_map`),
the layout transformers' `save_pretrained` produces. The host never holds more than one
file's worth of tensors.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
from safetensors.numpy import save_file

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"


def weight_files(folder: str | pathlib.Path) -> list[pathlib.Path]:
  """The folder's safetensors files: those of its index when it has one, else all of them."""
  folder = pathlib.Path(folder)
  index = folder / INDEX_NAME
  if index.is_file():
    try:
      weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
      raise ValueError(f"{index}: expected JSON with a 'weight_map' object ({e!r})") from e
    files = [folder / name for name in sorted(set(weight_map.values()))]
    absent = [f.name for f in files if not f.is_file()]
    if absent:
      raise FileNotFoundError(f"{index}: weight_map names files that are not in the folder: "
                              f"{absent}")
    return files
  files = sorted(folder.glob("*.safetensors"))
  if not files:
    raise FileNotFoundError(f"{folder}: no *.safetensors weight file")
  return files


def parse_size(size: int | str) -> int:
  """Bytes of `size`: an int or a string such as '5GB' / '500MB' (transformers' notation)."""
  if isinstance(size, int):
    return size
  units = {"GB": 10**9, "MB": 10**6, "KB": 10**3, "B": 1}
  text = size.strip().upper()
  for unit, scale in units.items():
    if text.endswith(unit) and text[:-len(unit)].strip().replace(".", "", 1).isdigit():
      return int(float(text[:-len(unit)]) * scale)
  raise ValueError(f"max_shard_size {size!r}: expected bytes or a size such as '5GB', '200MB'")


class ShardedWriter:
  """Writes tensors given one at a time as shards of at most `max_shard_bytes` (plus index).

  `write=False` (processes other than 0 of a multi-host job) consumes the tensors and writes
  nothing, so every process can run the same gathering loop.
  """

  def __init__(self, folder: str | pathlib.Path, max_shard_bytes: int | str = "5GB",
               write: bool = True):
    self.folder = pathlib.Path(folder)
    self.max_bytes = parse_size(max_shard_bytes)
    self.write = write
    self._held: dict[str, np.ndarray] = {}
    self._held_bytes = 0
    self._files: list[list[str]] = []  # tensor names of each file written
    self.total_bytes = 0

  def add(self, name: str, array: np.ndarray) -> None:
    if any(name in names for names in self._files) or name in self._held:
      raise ValueError(f"ShardedWriter: tensor {name} given twice")
    if self._held and self._held_bytes + array.nbytes > self.max_bytes:
      self._flush()
    self._held[name] = np.ascontiguousarray(array)
    self._held_bytes += array.nbytes
    self.total_bytes += array.nbytes

  def _part(self, i: int) -> pathlib.Path:
    return self.folder / f"part-{i:05d}.safetensors.tmp"

  def _flush(self) -> None:
    if self.write:
      save_file(self._held, str(self._part(len(self._files))), metadata={"format": "pt"})
    self._files.append(list(self._held))
    self._held, self._held_bytes = {}, 0

  def close(self) -> list[pathlib.Path]:
    """Writes what is held, names the files and the index; returns the files' paths."""
    if self._held or not self._files:
      self._flush()
    n = len(self._files)
    names = [SINGLE_NAME] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors"
                                          for i in range(n)]
    if not self.write:
      return [self.folder / name for name in names]
    for stale in [*self.folder.glob("model-*-of-*.safetensors"), self.folder / SINGLE_NAME]:
      if stale.name not in names and stale.exists():
        stale.unlink()  # Left by an earlier export with another file count.
    for i, name in enumerate(names):
      self._part(i).replace(self.folder / name)
    index = self.folder / INDEX_NAME
    if n > 1:
      weight_map = {t: names[i] for i, tensors in enumerate(self._files) for t in tensors}
      index.write_text(json.dumps({"metadata": {"total_size": self.total_bytes},
                                   "weight_map": dict(sorted(weight_map.items()))}, indent=2),
                       encoding="utf-8")
    elif index.exists():
      index.unlink()  # A stale index of an earlier, sharded export would shadow the new file.
    return [self.folder / name for name in names]
