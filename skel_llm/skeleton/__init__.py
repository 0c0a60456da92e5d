"""Skeleton formats: topology registry, strict parsers, `load()`, sampling.

Owns everything that turns a skeleton file of any format into a
`SkeletonRecord`; knows nothing about rendering or models.
"""

from skel_llm.skeleton import topology
from skel_llm.skeleton.errors import SkeletonFormatError
from skel_llm.skeleton.record import SkeletonRecord

__all__ = ["SkeletonFormatError", "SkeletonRecord", "topology"]
