"""TFDS builders for every dataset skel_llm trains or evaluates on (array_record, no TensorFlow).

Each dataset lives in `data_prep/<name>/<name>_dataset_builder.py` (class
`Builder`) so that `tfds build data_prep/<name>` finds it. Without TensorFlow
installed, `tfds build` itself cannot start (its CLI imports TensorFlow), so
`python -m data_prep.build` runs the same command line with TFDS's own
argument parser. Read the result with `tfds.data_source(...)`.
"""
