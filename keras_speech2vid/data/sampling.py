"""The identity-sampling rule, written once for both training sources (tf.data and array chunks).

A target at position p of a track of `length` frames takes its identity images from the positions at
distance ≥ d = min(min_distance, farthest reachable) from p (the paper's Figure 7: the identity should
not show the target's mouth), uniformly, with replacement. The candidates are two runs, [0, p − d] and
[p + max(d, 1), length), so a uniform u ∈ [0, 1) picks the k-th candidate with k = ⌊u · count⌋ by
arithmetic alone: the same lines run on NumPy arrays and on TF tensors (`xp` is `numpy` or `tensorflow`).
"""

from __future__ import annotations


def identity_positions(length, target, uniforms, min_distance, xp):
    """Float positions (cast them) for `uniforms` in [0, 1); `length` and `target` broadcast against them.

    All inputs as floats of one dtype (float64 keeps positions exact)."""
    threshold = xp.minimum(min_distance, xp.maximum(target, length - 1 - target))
    left = xp.maximum(target - threshold + 1, 0)  # candidates 0 … p − d
    right_start = target + xp.maximum(threshold, 1)  # d = 0 (a 1-frame track): p is in the left run only
    right = xp.maximum(length - right_start, 0)
    k = xp.minimum(xp.floor(uniforms * (left + right)), left + right - 1)
    return xp.where(k < left, k, right_start + k - left)
