"""`load()`: one entry point that recognises a skeleton file's format and parses it.

Recognition is by extension first, then by content (JSON keys, array shapes,
values per line); `format=` overrides it. Formats and their parsers:

| format | files | parser |
|---|---|---|
| ntu | NTU RGB+D `.skeleton` | `ntu.parse_ntu` |
| pku_mmd | PKU-MMD skeleton `.txt` (150 numbers per line) | `pku_mmd.parse_pku_mmd` |
| kinetics | Kinetics-skeleton `.json` (OpenPose-18) | `kinetics.parse_kinetics` |
| nw_ucla | NW-UCLA `.json` (Kinect v1, 20 joints) | `nw_ucla.parse_nw_ucla` |
| humanml3d | HumanML3D `new_joints/*.npy` [T, 22, 3] | `humanml3d.parse_humanml3d` |
| humanml3d_vecs | HumanML3D `new_joint_vecs/*.npy` [T, 263] | `humanml3d.parse_humanml3d_vecs` |
| coco | COCO person-keypoints `.json` | `keypoints.parse_coco` |
| h36m | Human3.6M-17 `.npz` (mmpose) or `.npy` [N, 17, 2|3] | `keypoints.parse_h36m` |
| bvh | BVH motion capture | `bvh.parse_bvh` |

A path on object storage (`gs://bucket/clip.skeleton`, anything `etils.epath` opens) is
downloaded to a temporary local file of the same name, parsed there and deleted; the record's
`source` and every error name the remote path. Remote path arguments (`label_path=`,
`texts_dir=`) are downloaded too, and a remote HumanML3D file finds its `../texts/<name>.txt`
captions as a local one does.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
from typing import Any, Iterator


from skel_llm.skeleton import files
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.record import SkeletonRecord

# format -> (module, single-record parser, all-records parser or None)
_PARSERS: dict[str, tuple[str, str, str | None]] = {
    "ntu": ("ntu", "parse_ntu", None),
    "pku_mmd": ("pku_mmd", "parse_pku_mmd", "parse_pku_mmd_segments"),
    "kinetics": ("kinetics", "parse_kinetics", None),
    "nw_ucla": ("nw_ucla", "parse_nw_ucla", None),
    "humanml3d": ("humanml3d", "parse_humanml3d", None),
    "humanml3d_vecs": ("humanml3d", "parse_humanml3d_vecs", None),
    "coco": ("keypoints", "parse_coco", "parse_coco_images"),
    "h36m": ("keypoints", "parse_h36m", None),
    "bvh": ("bvh", "parse_bvh", None),
}

ALIASES = {
    "skeleton": "ntu", "ntu25": "ntu", "ntu_skeleton": "ntu", "kinect_v2": "ntu",
    "pku": "pku_mmd", "pkummd": "pku_mmd",
    "kinetics_skeleton": "kinetics", "openpose18": "kinetics",
    "ucla": "nw_ucla", "nwucla": "nw_ucla", "kinect20": "nw_ucla", "kinect_v1": "nw_ucla",
    "smpl22": "humanml3d",
    "coco17": "coco",
    "h36m17": "h36m", "human36m": "h36m",
}


def formats() -> list[str]:
  """Names accepted by `load(format=...)` (aliases in `ALIASES` also work)."""
  return sorted(_PARSERS)


def _canonical(fmt: str, path: str) -> str:
  key = fmt.lower().replace("-", "_")
  key = ALIASES.get(key, key)
  if key not in _PARSERS:
    raise SkeletonFormatError(path, None, f"unknown format {fmt!r}; expected one of "
                              f"{formats()} or an alias {sorted(ALIASES)}")
  return key


def _json_kind(path: str, obj) -> str:
  if isinstance(obj, dict):
    if "annotations" in obj and "images" in obj:
      return "coco"
    if "skeletons" in obj:
      return "nw_ucla"
    if "data" in obj and isinstance(obj["data"], list):
      return "kinetics"
  raise SkeletonFormatError(path, "$", "unknown JSON skeleton layout: expected a COCO "
                            "('images' + 'annotations'), NW-UCLA ('skeletons') or "
                            "Kinetics-skeleton ('data' list) object")


def _array_kind(path: str) -> str:
  shape, _ = files.npy_header(path)
  if len(shape) == 3 and shape[1:] == (22, 3):
    return "humanml3d"
  if len(shape) == 2 and shape[1] == 263:
    return "humanml3d_vecs"
  if len(shape) == 3 and shape[1] == 17 and shape[2] in (2, 3):
    return "h36m"
  raise SkeletonFormatError(path, None, f"unknown .npy skeleton array of shape {shape}: expected "
                            "[T, 22, 3] (HumanML3D) or [N, 17, 2|3] (H36M keypoints)")


def _txt_kind(path: str) -> str:
  try:
    with open(path, "rb") as f:
      first = f.readline(1 << 16)
  except OSError as e:
    raise SkeletonFormatError(path, None, f"cannot read file ({e.strerror})") from None
  n = len(first.split())
  if n == 150:
    return "pku_mmd"
  if not first.strip():
    raise SkeletonFormatError(path, 1, "empty file: cannot recognise a skeleton format")
  if n == 1 and first.strip().isdigit():
    return "ntu"
  raise SkeletonFormatError(path, 1, f"unknown text skeleton format: expected 150 numbers per "
                            f"line (PKU-MMD) or a frame count (NTU), got {n} fields")


def detect_format(path: str | os.PathLike) -> str:
  """The `load()` format name of a file, from its extension and content."""
  return _detect(os.fspath(path))[0]


def _detect(path: str) -> tuple[str, dict]:
  """(format, extra parser kwargs): a JSON file's parsed document is passed on, not re-read."""
  if not os.path.isfile(path):
    raise SkeletonFormatError(path, None, "no such file")
  name = os.path.basename(path).lower()
  ext = os.path.splitext(name)[1]
  if name.endswith(".skeleton"):
    return "ntu", {}
  if ext == ".bvh":
    return "bvh", {}
  if ext == ".json":
    doc = files.read_json(path)
    return _json_kind(path, doc), {"doc": doc}
  if ext == ".npy":
    return _array_kind(path), {}
  if ext == ".npz":
    return "h36m", {}
  if ext == ".txt":
    return _txt_kind(path), {}
  raise SkeletonFormatError(path, None, f"unknown skeleton file type {ext or name!r}: expected "
                            ".skeleton, .txt, .json, .npy, .npz or .bvh, or pass format=")


def _parser(fmt: str, which: int):
  module, single, many = _PARSERS[fmt]
  mod = importlib.import_module(f"skel_llm.skeleton.{module}")
  name = single if which == 0 else (many or single)
  return getattr(mod, name)


_PATH_KWARGS = ("label_path", "texts_dir")


@contextlib.contextmanager
def _local(path: str, kwargs: dict) -> Iterator[tuple[str, dict, dict[str, str]]]:
  """(local path, kwargs with local paths, {local path: remote path}): the file itself when
  local, else downloaded copies (deleted on exit); a SkeletonFormatError raised inside names
  the remote path."""
  from skel_llm import fs
  remote = {k: os.fspath(v) for k, v in kwargs.items()
            if k in _PATH_KWARGS and v is not None and fs.is_remote(v)}
  if not fs.is_remote(path) and not remote:
    yield path, kwargs, {}
    return
  names: dict[str, str] = {}
  kwargs = dict(kwargs)
  stem = files.basename_stem(path)
  with tempfile.TemporaryDirectory(prefix="skel_llm_skeleton_") as tmp:
    try:
      local = path
      if fs.is_remote(path):
        if not fs.isfile(path):
          raise SkeletonFormatError(path, None, "no such file")
        local = os.path.join(tmp, os.path.basename(path))
        _download(path, local)
        names[local] = path
        texts = fs.join(os.path.dirname(os.path.dirname(path)), "texts")
        if (path.endswith(".npy") and "texts_dir" not in kwargs
            and fs.isfile(fs.join(texts, f"{stem}.txt"))):
          remote["texts_dir"] = texts  # HumanML3D's ../texts, as for a local file
      for key, value in remote.items():
        dst = os.path.join(tmp, key, os.path.basename(value.rstrip("/")))
        if key == "texts_dir":  # only the clip's own caption file
          src = fs.join(value, f"{stem}.txt")
          if fs.isfile(src):
            _download(src, os.path.join(dst, f"{stem}.txt"))
          os.makedirs(dst, exist_ok=True)
        else:
          if not fs.isfile(value):
            raise SkeletonFormatError(value, None, "no such file")
          _download(value, dst)
        kwargs[key] = dst
        names[dst] = value
      yield local, kwargs, names
    except SkeletonFormatError as e:
      if e.path in names:
        raise SkeletonFormatError(names[e.path], e.where, e.expected) from None
      raise


def _download(src: str, dst: str) -> None:
  from skel_llm import fs
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  try:
    data = fs.path(src).read_bytes()
  except OSError as e:
    raise SkeletonFormatError(src, None, f"cannot read file ({e})") from None
  with open(dst, "wb") as f:
    f.write(data)


def _parse(path: str, format: str | None, kwargs: dict, which: int) -> list[SkeletonRecord]:  # noqa: A002
  with _local(path, kwargs) as (local, local_kwargs, names):
    fmt, extra = _detect(local) if format is None else (_canonical(format, local), {})
    if fmt not in ("humanml3d", "humanml3d_vecs") and "texts_dir" not in kwargs:
      local_kwargs.pop("texts_dir", None)  # found beside a remote .npy that is not HumanML3D
    out = _parser(fmt, which)(local, **extra, **local_kwargs)
  out = out if isinstance(out, list) else [out]
  for rec in out:  # a downloaded file's record names the remote file and folders
    rec.source = names.get(rec.source, rec.source)
    if rec.metadata.get("texts_dir") in names:
      rec.metadata["texts_dir"] = names[rec.metadata["texts_dir"]]
  return out


def load(path: str | os.PathLike, format: str | None = None, **kwargs: Any) -> SkeletonRecord:  # noqa: A002
  """Reads one skeleton file of any supported format into a `SkeletonRecord`.

  Args:
    path: the file.
    format: one of `formats()` (or an alias) to skip recognition.
    **kwargs: passed to the format's parser (e.g. `bodies='first'` for NTU,
      `texts_dir=` for HumanML3D, `label_path=` for PKU-MMD).

  Raises:
    SkeletonFormatError: unknown format or malformed file (names file, line
      or JSON path, and what was expected).
  """
  return _parse(os.fspath(path), format, kwargs, 0)[0]


def load_all(path: str | os.PathLike, format: str | None = None,
             **kwargs: Any) -> list[SkeletonRecord]:  # noqa: A002
  """All clips of a file: PKU-MMD segments (with `label_path=`), COCO images, else [load()]."""
  return _parse(os.fspath(path), format, kwargs, 1)
