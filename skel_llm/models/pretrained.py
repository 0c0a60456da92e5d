"""The committed pretrained tiny InternVL (the embedded world's InternVL3) and its digest check.

`ASSET_DIR` is a transformers-layout folder (config.json, model.safetensors) written by
`python -m skel_llm.tools.pretrain_demo` (`skel_llm.pretrain.builder`), plus `provenance.json`:
the builder's config, seeds, class lists, loss curve, parameter digests and the sha256 of every
file. `verify(folder)` checks those sha256s; `skel_llm.train.build` calls it for every
`config.init_from=hf:<folder>` that holds a provenance.json, so a corrupted or hand-edited
asset stops the run before anything is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

ASSET_DIR = pathlib.Path(__file__).parent / "assets" / "tiny_internvl_pretrained"
PROVENANCE = "provenance.json"
REBUILD = "python -m skel_llm.tools.pretrain_demo --out=skel_llm/models/assets/tiny_internvl_pretrained"


def file_sha256(path: str | os.PathLike) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      h.update(block)
  return h.hexdigest()


def read_provenance(folder: str | os.PathLike = ASSET_DIR) -> dict:
  path = pathlib.Path(folder) / PROVENANCE
  if not path.is_file():
    raise FileNotFoundError(f"{path} does not exist; build the asset with: {REBUILD}")
  with open(path, encoding="utf-8") as f:
    try:
      record = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: not valid JSON ({e})") from None
  if not isinstance(record.get("files"), dict) or not record["files"]:
    raise ValueError(f"{path}: field 'files' must map file names to sha256 digests")
  return record


def verify(folder: str | os.PathLike = ASSET_DIR) -> dict:
  """The provenance record of `folder` after checking the sha256 of every file it lists and
  that every weights file of the folder is listed; raises ValueError naming the file."""
  folder = pathlib.Path(folder)
  record = read_provenance(folder)
  for name, want in sorted(record["files"].items()):
    path = folder / name
    if not path.is_file():
      raise ValueError(f"{path}: listed in {PROVENANCE} but missing; rebuild with: {REBUILD}")
    got = file_sha256(path)
    if got != want:
      raise ValueError(f"{path}: sha256 {got} differs from {want} in {folder / PROVENANCE}: the "
                       f"file is corrupted or was changed; restore it (git checkout) or "
                       f"rebuild with: {REBUILD}")
  unlisted = sorted(p.name for p in folder.glob("*.safetensors") if p.name not in record["files"])
  if unlisted:
    raise ValueError(f"{folder}: weights files {unlisted} are not in {PROVENANCE}")
  return record


def has_provenance(folder: str | os.PathLike) -> bool:
  return (pathlib.Path(folder) / PROVENANCE).is_file()
