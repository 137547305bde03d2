"""Experiments that measure cvlab (not part of the core API: nothing in cvlab imports this package).

``active_learning``: the smart labeler vs random picking, round after round (``benchmarks/active_learning.py``,
notebook 07).
"""
