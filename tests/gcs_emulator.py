"""`python tests/gcs_emulator.py --port=N --bucket=B`: the GCS emulator of tests/test_fs.py.

`gcp-storage-emulator` (2026.7.19) serves object downloads without the `x-goog-generation`
header that real GCS sends. tensorstore (orbax's array writer) reads an object's generation
from that header and, without it, fails the next conditional write of the object ("Malformed
StorageGeneration" on an OCDBT manifest). This wrapper adds the header (and
`x-goog-metageneration`) to the emulator's download handler and starts it; nothing else is
changed. The emulator also ignores `ifGenerationMatch` preconditions, so the test covers one
writer at a time (what the trainer does: process 0 writes, or each process its own files).
"""

import argparse

from gcp_storage_emulator import server
from gcp_storage_emulator.handlers import objects

_download = objects.download


def _download_with_generation(request, response, storage, *args, **kwargs):
  try:
    obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
  except Exception:  # the emulator's NotFound: the original handler answers 404
    obj = None
  if obj is not None:
    response["x-goog-generation"] = str(obj["generation"])
    response["x-goog-metageneration"] = str(obj["metageneration"])
  return _download(request, response, storage, *args, **kwargs)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--port", type=int, required=True)
  parser.add_argument("--bucket", required=True)
  args = parser.parse_args()
  objects.download = _download_with_generation
  srv = server.create_server("127.0.0.1", args.port, in_memory=True,
                             default_bucket=args.bucket)
  srv.run()


if __name__ == "__main__":
  main()
