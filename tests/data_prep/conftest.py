"""Helpers for the builder tests: build into a temporary data dir, read back without TensorFlow."""

import os

import pytest
import tensorflow_datasets as tfds

from data_prep import common


def _build(builder_cls, data_dir, manual_dir=None, config=None):
  builder = builder_cls(config=config, data_dir=os.fspath(data_dir), file_format="array_record")
  dl = tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir)) if manual_dir else None
  builder.download_and_prepare(download_config=dl)
  return builder


def _read(name, data_dir, split):
  ds = tfds.data_source(name, data_dir=os.fspath(data_dir), split=split)
  return {common.text(ex["name"]): ex for ex in (ds[i] for i in range(len(ds)))}


@pytest.fixture
def tfds_build():
  """tfds_build(builder_cls, data_dir, manual_dir=None, config=None) -> the prepared builder."""
  return _build


@pytest.fixture
def tfds_read():
  """tfds_read('name/config', data_dir, split) -> {example name: example} via tfds.data_source."""
  return _read
