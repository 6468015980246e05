"""Percentiles and latency summaries (pure functions, no I/O)."""
import math

PERCENTILES = (50, 90, 99)


def percentile(values, p):
    """The p-th percentile by linear interpolation between closest ranks
    (numpy's default): rank k = (n - 1) * p / 100. NaN for an empty input."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return percentile_sorted(ordered, p)


def percentile_sorted(ordered, p):
    """percentile() of an already sorted, non-empty list."""
    k = (len(ordered) - 1) * p / 100.0
    lo = int(math.floor(k))
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summarize(values, scale=1.0, digits=3):
    """{n, mean, p50, p90, p99, max} of values × scale (e.g. 1000 for s → ms);
    None when there are no values, so a report never shows a made-up figure."""
    if not values:
        return None
    ordered = sorted(v * scale for v in values)
    out = {"n": len(ordered), "mean": round(sum(ordered) / len(ordered), digits)}
    for p in PERCENTILES:
        out[f"p{p}"] = round(percentile_sorted(ordered, p), digits)
    out["max"] = round(ordered[-1], digits)
    return out


def crossing(xs, ys, threshold):
    """The first x at which the series y(x) rises above threshold, interpolated
    linearly between the last point at or below it and the first point above.
    None if it never crosses; xs[0] if the first point is already above."""
    points = [(x, y) for x, y in zip(xs, ys) if y is not None and not math.isnan(y)]
    for i, (x, y) in enumerate(points):
        if y > threshold:
            if i == 0:
                return x
            x0, y0 = points[i - 1]
            return x0 + (x - x0) * (threshold - y0) / (y - y0)
    return None
