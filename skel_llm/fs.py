"""Files of a run, local or on Cloud Storage: every path goes through `etils.epath`.

A workdir may be a local folder or `gs://bucket/run` (etils.epath -> fsspec/gcsfs; orbax
writes the checkpoint arrays itself through tensorstore's `gs://` driver). What differs on
object storage, and how this module handles it:

- no rename: `write_json`/`write_bytes` write to a `.tmp` and rename locally; on `gs://` an
  object upload is already all-or-nothing, so they write the object directly;
- no append: `Appender` appends to a local file line by line; on `gs://` it keeps the lines
  (those already there, read at open, and the new ones) and rewrites the object on `sync()`;
- libraries that only write to a local path (safetensors, transformers' `save_pretrained`):
  `local_dir(path)` hands them a local folder and uploads it on exit, `local_copy(path)`
  downloads a remote file or folder for those that only read local paths;
- model folders read by libraries that need local files (`safetensors.safe_open` maps the
  file; the tokenizer loaders): `cached_folder(path)` mirrors a remote folder once into the
  cache `$SKEL_LLM_CACHE` (default `~/.cache/skel_llm`), at `<cache>/gs/<bucket>/<path>`, and
  later calls download only files that are missing or whose size changed (files no longer in
  the remote folder are deleted from the copy); `cached_file(path, siblings)` does the same
  for one file (a released renderer and the `.json` beside it).

Tests run all of it against a GCS emulator (STORAGE_EMULATOR_HOST for gcsfs and
google-cloud-storage, TENSORSTORE_GCS_HTTP_URL for tensorstore): tests/test_fs.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from typing import Any, Iterator

from etils import epath

PathLike = str | os.PathLike


def is_remote(path: PathLike) -> bool:
  """Whether `path` is on object storage (`gs://`, `s3://`, ...), not a local path."""
  return "://" in os.fspath(path)


def path(p: PathLike) -> epath.Path:
  return epath.Path(p)


def join(base: PathLike, *parts: str) -> str:
  """`base/part/...` as a string; `gs://` prefixes are kept."""
  return os.fspath(epath.Path(base).joinpath(*parts))


def absolute(p: PathLike) -> str:
  """A local path made absolute; a remote one unchanged."""
  return os.fspath(p) if is_remote(p) else os.path.abspath(os.fspath(p))


def exists(p: PathLike) -> bool:
  return epath.Path(p).exists()


def isdir(p: PathLike) -> bool:
  return epath.Path(p).is_dir()


def isfile(p: PathLike) -> bool:
  return epath.Path(p).is_file()


def makedirs(p: PathLike) -> None:
  epath.Path(p).mkdir(parents=True, exist_ok=True)


def listdir(p: PathLike) -> list[str]:
  """The names in folder `p`, sorted."""
  return sorted(c.name for c in epath.Path(p).iterdir())


def read_text(p: PathLike) -> str:
  return epath.Path(p).read_text()


def read_json(p: PathLike) -> Any:
  return json.loads(read_text(p))


def write_bytes(p: PathLike, data: bytes) -> None:
  """Writes `data` to `p` all at once: readers never see half a file."""
  target = epath.Path(p)
  if is_remote(p):
    target.write_bytes(data)
    return
  tmp = epath.Path(os.fspath(p) + ".tmp")
  tmp.write_bytes(data)
  os.replace(tmp, target)


def write_text(p: PathLike, text: str) -> None:
  write_bytes(p, text.encode("utf-8"))


def write_json(p: PathLike, obj: Any, indent: int | None = 2) -> None:
  write_text(p, json.dumps(obj, indent=indent))


def save_image(p: PathLike, image: Any, **kwargs) -> None:
  """A PIL image (or uint8[H, W, 3|4] array) to `p`, format from its extension."""
  from PIL import Image

  if not isinstance(image, Image.Image):
    image = Image.fromarray(image)
  buf = io.BytesIO()
  ext = os.path.splitext(os.fspath(p))[1].lstrip(".").upper()
  image.save(buf, format={"JPG": "JPEG"}.get(ext, ext or "PNG"), **kwargs)
  write_bytes(p, buf.getvalue())


def save_figure(p: PathLike, fig: Any, **kwargs) -> None:
  """A matplotlib figure to `p` (PNG unless the extension says otherwise)."""
  buf = io.BytesIO()
  ext = os.path.splitext(os.fspath(p))[1].lstrip(".").lower() or "png"
  fig.savefig(buf, format=ext, **kwargs)
  write_bytes(p, buf.getvalue())


class Appender:
  """Lines appended to a file that may live on object storage (module docstring)."""

  def __init__(self, p: PathLike):
    self.path = os.fspath(p)
    self._remote = is_remote(p)
    if self._remote:
      self._lines = [read_text(p)] if exists(p) else []
      self._dirty = False
    else:
      self._f = open(self.path, "a")

  def write(self, line: str) -> None:
    if self._remote:
      self._lines.append(line)
      self._dirty = True
    else:
      self._f.write(line)
      self._f.flush()

  def sync(self) -> None:
    """Makes every written line durable (remote: one upload of the whole file)."""
    if self._remote and self._dirty:
      epath.Path(self.path).write_text("".join(self._lines))
      self._dirty = False

  def close(self) -> None:
    self.sync()
    if not self._remote:
      self._f.close()

  def __enter__(self) -> "Appender":
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def _copy_tree(src: epath.Path, dst: epath.Path) -> None:
  if src.is_dir():
    dst.mkdir(parents=True, exist_ok=True)
    for child in src.iterdir():
      _copy_tree(child, dst / child.name)
  else:
    dst.write_bytes(src.read_bytes())


@contextlib.contextmanager
def local_dir(p: PathLike) -> Iterator[str]:
  """A local folder standing for folder `p`: `p` itself when local (created), else a
  temporary folder whose contents are uploaded to `p` when the block exits without error."""
  if not is_remote(p):
    makedirs(p)
    yield os.fspath(p)
    return
  with tempfile.TemporaryDirectory(prefix="skel_llm_upload_") as tmp:
    yield tmp
    _copy_tree(epath.Path(tmp), epath.Path(p))


@contextlib.contextmanager
def local_copy(p: PathLike) -> Iterator[str]:
  """A local path holding file or folder `p`: `p` itself when local, else a downloaded copy
  (deleted when the block exits)."""
  if not is_remote(p):
    yield os.fspath(p)
    return
  src = epath.Path(p)
  if not src.exists():
    raise FileNotFoundError(f"{p}: no such file or folder")
  with tempfile.TemporaryDirectory(prefix="skel_llm_download_") as tmp:
    dst = epath.Path(tmp) / src.name
    _copy_tree(src, dst)
    yield os.fspath(dst)


CACHE_ENV = "SKEL_LLM_CACHE"


def cache_root() -> str:
  """The local cache of remote model folders: `$SKEL_LLM_CACHE`, else ~/.cache/skel_llm."""
  return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "skel_llm")


def _remote_files(src: epath.Path, rel: str = "") -> dict[str, int]:
  """{relative path: size in bytes} of every file under remote folder `src`."""
  out = {}
  for child in src.iterdir():
    name = f"{rel}{child.name}"
    if child.is_dir():
      out.update(_remote_files(child, name + "/"))
    else:
      out[name] = int(child.stat().length)
  return out


def _cache_path(p: PathLike) -> str:
  """Where remote `p` (scheme://rest) is mirrored under `cache_root()`."""
  scheme, rest = os.fspath(p).rstrip("/").split("://", 1)
  return os.path.join(cache_root(), scheme, *rest.split("/"))


def _mirror(src: epath.Path, dst: str, size: int) -> None:
  """Downloads remote file `src` to `dst` unless a file of its size is already there."""
  if os.path.isfile(dst) and os.path.getsize(dst) == size:
    return
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  with src.open("rb") as r, open(dst + ".tmp", "wb") as w:
    shutil.copyfileobj(r, w, 1 << 24)  # streamed: weight files can be many GB
  os.replace(dst + ".tmp", dst)


def cached_folder(p: PathLike) -> str:
  """A local folder holding folder `p`: `p` itself when local, else its mirror in
  `cache_root()` (module docstring), brought up to date with the remote folder."""
  if not is_remote(p):
    return os.fspath(p)
  text = os.fspath(p).rstrip("/")
  local = _cache_path(text)
  src = epath.Path(text)
  if not src.is_dir():
    raise FileNotFoundError(f"{text}: no such folder")
  want = _remote_files(src)
  for rel, size in want.items():
    _mirror(src / rel, os.path.join(local, *rel.split("/")), size)
  for root, _, names in os.walk(local):
    for name in names:
      rel = os.path.relpath(os.path.join(root, name), local).replace(os.sep, "/")
      if rel not in want:
        os.remove(os.path.join(root, name))
  return local


def cached_file(p: PathLike, siblings: tuple[str, ...] = ()) -> str:
  """A local path holding file `p`: `p` itself when local, else its mirror in `cache_root()`
  (refreshed when the remote size differs). Each of `siblings` (remote paths, e.g. a
  checkpoint's metadata file) that exists is mirrored too, so readers that look beside `p`
  find it; one that does not exist is removed from the mirror."""
  if not is_remote(p):
    return os.fspath(p)
  src = epath.Path(p)
  if not src.is_file():
    raise FileNotFoundError(f"{p}: no such file")
  _mirror(src, _cache_path(p), int(src.stat().length))
  for q in siblings:
    other = epath.Path(q)
    if other.is_file():
      _mirror(other, _cache_path(q), int(other.stat().length))
    elif os.path.isfile(_cache_path(q)):
      os.remove(_cache_path(q))
  return _cache_path(p)


def remove_tree(p: PathLike) -> None:
  """Deletes file or folder `p` if it exists."""
  target = epath.Path(p)
  if not target.exists():
    return
  if is_remote(p):
    target.rmtree() if target.is_dir() else target.unlink()
  elif target.is_dir():
    shutil.rmtree(target)
  else:
    target.unlink()


def main(argv: list[str]) -> int:
  """`python -m skel_llm.fs isfile|isdir PATH`: exit 0 when it is one, 1 when not (the shell
  scripts in launch/ ask this about gs:// paths, which bash's `[[ -f ]]` cannot see)."""
  if len(argv) != 3 or argv[1] not in ("isfile", "isdir"):
    print("usage: python -m skel_llm.fs isfile|isdir PATH", file=sys.stderr)
    return 2
  return 0 if (isfile if argv[1] == "isfile" else isdir)(argv[2]) else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv))
