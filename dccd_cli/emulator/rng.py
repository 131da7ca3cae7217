"""Counter-based randomness for the synthetic market: random access, no history.

Every random number in the market is a pure function of ``(seed, symbol, stream, index)``:
SplitMix64's output function applied to ``key + index * golden``. That is exactly the
SplitMix64 sequence read at position ``index``, so any minute of any year is generated in
O(1) without running the generator through the years before it — serving a page of 2019
never touches 2017 or 2018. Everything here is vectorised over numpy arrays of indices.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_G = np.uint64(_GOLDEN)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / float(1 << 53)


def derive_key(seed: int, *labels: str | int) -> int:
    """A 64-bit key from a seed and labels (a symbol, a stream name), stable across runs.

    blake2b rather than ``hash()`` because Python salts string hashes per process.
    """
    text = "\x1f".join([str(seed), *map(str, labels)]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def _mix(x: U64) -> U64:
    """SplitMix64's finaliser (a bijection on 64-bit integers with good avalanche)."""
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


def bits(key: int, index: npt.ArrayLike) -> U64:
    """64 random bits per index: the SplitMix64 sequence of ``key`` read at ``index``."""
    idx = np.atleast_1d(np.asarray(index)).astype(np.uint64)
    # Array (never scalar-scalar) arithmetic, so that wrap-around raises no warning.
    return _mix(idx * _G + np.uint64(key & _MASK))


def uniform(key: int, index: npt.ArrayLike) -> F64:
    """Uniform floats in [0, 1), one per index."""
    return (bits(key, index) >> _S11).astype(np.float64) * _TO_UNIT


def uniforms3(key: int, index: npt.ArrayLike) -> tuple[F64, F64, F64]:
    """Three independent uniforms in [0, 1) per index from one hash (21 bits each:
    plenty for weights and choices, and a third of the hashing)."""
    h = bits(key, index)
    mask = np.uint64((1 << 21) - 1)
    scale = 1.0 / (1 << 21)
    return ((h & mask).astype(np.float64) * scale,
            ((h >> np.uint64(21)) & mask).astype(np.float64) * scale,
            ((h >> np.uint64(42)) & mask).astype(np.float64) * scale)


def normals2(key: int, index: npt.ArrayLike) -> tuple[F64, F64]:
    """Two independent standard normals per index from one hash (Box-Muller on its two
    32-bit halves)."""
    h = bits(key, index)
    lo32 = np.uint64(0xFFFFFFFF)
    u1 = 1.0 - ((h >> np.uint64(32)).astype(np.float64) + 0.5) / 4294967296.0  # in (0, 1)
    u2 = (h & lo32).astype(np.float64) / 4294967296.0
    r = np.sqrt(-2.0 * np.log(u1))
    a = 2.0 * np.pi * u2
    return r * np.cos(a), r * np.sin(a)


def normal(key: int, index: npt.ArrayLike) -> F64:
    """Standard normal floats, one per index."""
    return normals2(key, index)[0]


def value_noise(key: int, t: F64, period: float) -> F64:
    """Smooth 1-D noise: standard normal values at knots ``period`` apart, interpolated
    with smoothstep. Random access: the value at ``t`` depends on two knots only."""
    x = t / period
    knot = np.floor(x)
    frac = x - knot
    # Knots may be negative in principle; the offset keeps indices non-negative for uint64.
    k = knot.astype(np.int64) + (1 << 40)
    if k.size == 0:
        return np.zeros(0, dtype=np.float64)
    lo, hi = int(k.min()), int(k.max())
    if hi - lo + 2 < k.size:
        # Long periods: few distinct knots, so draw each knot once and gather.
        table = normal(key, np.arange(lo, hi + 2, dtype=np.int64))
        v0, v1 = table[k - lo], table[k - lo + 1]
    else:
        v0, v1 = normal(key, k), normal(key, k + 1)
    s = frac * frac * (3.0 - 2.0 * frac)
    out: F64 = v0 + (v1 - v0) * s
    return out


def split_int(total: I64, weights: F64) -> I64:
    """Split each row's integer ``total`` into non-negative integer parts along the last
    axis, proportional to ``weights``, summing to ``total`` exactly.

    ``total`` has shape ``weights.shape[:-1]``. Rows whose weights are all zero put the
    whole total in the last column (callers never ask for that with a non-zero total).
    Cumulative floors keep the sum exact whatever the float rounding.
    """
    cw = np.cumsum(weights, axis=-1)
    last = cw[..., -1:]
    frac = np.divide(cw, last, out=np.ones_like(cw), where=last > 0)
    frac[..., -1] = 1.0
    cum = np.floor(total[..., None] * frac).astype(np.int64)
    parts: I64 = cum.copy()
    parts[..., 1:] -= cum[..., :-1]
    return parts


def split_segments(total: I64, weights: F64, starts: I64) -> I64:
    """Like :func:`split_int` for ragged rows: element ``i`` belongs to segment ``s`` when
    ``starts[s] <= i < starts[s+1]`` (segments contiguous, non-empty, in order).

    Returns one part per element; each segment's parts sum to ``total[s]`` exactly.
    """
    n = weights.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    seg_len = np.diff(np.append(starts, n))
    seg = np.repeat(np.arange(starts.shape[0]), seg_len)
    cs = np.cumsum(weights)
    base = np.where(starts > 0, cs[np.maximum(starts - 1, 0)], 0.0)
    within = cs - base[seg]
    ends = starts + seg_len - 1
    seg_sum = within[ends]
    frac = within / np.where(seg_sum > 0, seg_sum, 1.0)[seg]
    frac[ends] = 1.0
    cum = np.floor(total[seg] * frac).astype(np.int64)
    prev = np.empty_like(cum)
    prev[0] = 0
    prev[1:] = cum[:-1]
    prev[starts] = 0
    parts: I64 = cum - prev
    return parts
