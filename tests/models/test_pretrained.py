"""Pins skel_llm/models/pretrained.py: the committed asset's files match their recorded
sha256, and a corrupted, missing or unlisted file is refused naming the file."""

import re
import shutil

import pytest

from skel_llm.models import pretrained, safetensors_io
from skel_llm.pretrain import builder

SHARD = "model-00001-of-00003.safetensors"


@pytest.fixture
def copy(tmp_path):
  dst = tmp_path / "asset"
  shutil.copytree(pretrained.ASSET_DIR, dst)
  return dst


def test_committed_asset_matches_its_provenance():
  record = pretrained.verify()
  weights = safetensors_io.weight_files(pretrained.ASSET_DIR)  # from the index
  assert set(record["files"]) == {"config.json", safetensors_io.INDEX_NAME,
                                  *(p.name for p in weights)}
  sizes = [p.stat().st_size for p in weights]
  assert sum(sizes) == pytest.approx(4 * record["num_params"], rel=0.01)  # float32
  # Transformers' rule: a file exceeds the shard size only when one tensor alone does.
  assert len(weights) == 3 and max(sizes) <= safetensors_io.parse_size(builder.SHARD_SIZE)


def test_a_flipped_byte_is_refused_naming_the_file(copy):
  path = copy / SHARD
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 0x01
  path.write_bytes(bytes(data))
  with pytest.raises(ValueError, match=re.escape(SHARD) + r": sha256 [0-9a-f]{64} differs"):
    pretrained.verify(copy)


def test_missing_and_unlisted_files_are_refused(copy):
  (copy / "extra.safetensors").write_bytes(b"x")
  with pytest.raises(ValueError, match=r"\['extra.safetensors'\] are not in provenance.json"):
    pretrained.verify(copy)
  (copy / "extra.safetensors").unlink()
  (copy / "config.json").unlink()
  with pytest.raises(ValueError, match="config.json: listed in provenance.json but missing"):
    pretrained.verify(copy)
  (copy / "provenance.json").write_text("{")
  with pytest.raises(ValueError, match="not valid JSON"):
    pretrained.verify(copy)
