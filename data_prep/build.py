"""`tfds build` without TensorFlow: same flags, same builders, array_record output.

The `tfds` command imports TensorFlow at start-up (its format-conversion
subcommand needs it), which we do not install. This runs TFDS's own `build`
subcommand directly, e.g.

    python -m data_prep.build data_prep/ntu_rgbd --config=ntu60_xsub \
        --manual_dir=/data/ntu --data_dir=~/tensorflow_datasets --file_format=array_record

Arguments are exactly those of `tfds build --help`.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
  import simple_parsing
  from tensorflow_datasets.scripts.cli import build

  parser = simple_parsing.ArgumentParser(prog="python -m data_prep.build",
                                         description=build.Args.__doc__)
  parser.add_arguments(build.Args, dest="args")
  if not any(a.startswith("--file_format") for a in argv):
    argv = [*argv, "--file_format=array_record"]  # TFDS's default (tfrecord) needs TensorFlow
  args = parser.parse_args(argv)
  if args.args.generation.file_format != "array_record":
    raise SystemExit("only --file_format=array_record works without TensorFlow")
  args.args.execute()


if __name__ == "__main__":
  main(sys.argv[1:])
