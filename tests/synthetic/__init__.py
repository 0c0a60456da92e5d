"""Tests for skel_llm/synthetic (a package so test file names may repeat across folders)."""
