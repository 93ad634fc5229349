"""Exact state-dict fingerprints of the curated model families, derived from the real
diffusers/transformers classes instantiated on the meta device (see ``tools/fingerprints.py``)."""
