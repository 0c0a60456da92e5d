"""Skeleton formats: topology registry, strict parsers, `load()`, sampling.

Owns everything that turns a skeleton file of any format into a
`SkeletonRecord`; knows nothing about rendering or models.
"""

from skel_llm.skeleton import topology
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.loader import detect_format, formats, load, load_all
from skel_llm.skeleton.ntu import filter_missing, parse_ntu, read_missing_skeletons
from skel_llm.skeleton.record import SkeletonRecord

__all__ = [
    "SkeletonFormatError", "SkeletonRecord", "detect_format", "filter_missing", "formats",
    "load", "load_all", "parse_ntu", "read_missing_skeletons", "topology",
]
