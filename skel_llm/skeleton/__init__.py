"""Skeleton formats: topology registry, strict parsers, `load()`, sampling.

Owns everything that turns a skeleton file of any format into a
`SkeletonRecord`; knows nothing about rendering or models.

Parsers (each also reachable through `load(path, format=...)`):
`parse_ntu`, `parse_pku_mmd` / `parse_pku_mmd_segments`, `parse_kinetics`,
`parse_nw_ucla`, `parse_humanml3d` / `parse_humanml3d_vecs`, `parse_coco` / `parse_coco_images`,
`parse_h36m`, `parse_bvh`.
"""

from skel_llm.skeleton import correspondence, sampling, topology
from skel_llm.skeleton.bvh import parse_bvh
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.humanml3d import parse_humanml3d, parse_humanml3d_vecs, read_captions
from skel_llm.skeleton.keypoints import parse_coco, parse_coco_images, parse_h36m
from skel_llm.skeleton.kinetics import parse_kinetics
from skel_llm.skeleton.loader import detect_format, formats, load, load_all
from skel_llm.skeleton.ntu import filter_missing, parse_ntu, read_missing_skeletons
from skel_llm.skeleton.nw_ucla import parse_nw_ucla
from skel_llm.skeleton.pku_mmd import parse_pku_mmd, parse_pku_mmd_segments, read_labels
from skel_llm.skeleton.record import SkeletonRecord

__all__ = [
    "SkeletonFormatError", "SkeletonRecord", "correspondence", "detect_format", "filter_missing", "formats",
    "load", "load_all", "parse_bvh", "parse_coco", "parse_coco_images", "parse_h36m",
    "parse_humanml3d", "parse_humanml3d_vecs", "parse_kinetics", "parse_ntu", "parse_nw_ucla", "parse_pku_mmd",
    "parse_pku_mmd_segments", "read_captions", "read_labels", "read_missing_skeletons",
    "sampling", "topology",
]
