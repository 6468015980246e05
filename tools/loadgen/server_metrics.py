"""The server's own view: GET /metrics (Prometheus text) before, during and after a
phase. Generic over names so that metrics the server adds later (prefix cache,
queue time) appear in the report without code changes: every tnl_* counter as a
delta, every gauge before/after and its mean/max while sampled, every histogram as
count, mean and estimated quantiles of the observations made during the phase."""
import asyncio
import re

PREFIX = "tnl_"
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """→ {"types": {family: type}, "samples": {(name, labels tuple): value}}."""
    types, samples = {}, {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            if line.startswith("# TYPE "):
                parts = line.split()
                if len(parts) >= 4:
                    types[parts[2]] = parts[3]
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            labels_text, _, value_text = rest.rpartition("}")
            labels = tuple(_LABEL.findall(labels_text))
        else:
            name, _, value_text = line.partition(" ")
            labels = ()
        try:
            value = float(value_text.split()[0])
        except (ValueError, IndexError):
            continue
        samples[(name.strip(), labels)] = value
    return {"types": types, "samples": samples}


def _series_name(name, labels):
    return name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else "")


def _family(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
            return name[: -len(suffix)], suffix
    return name, ""


def histogram_quantile(q, buckets):
    """Prometheus' estimate: buckets = [(upper bound, cumulative count)] sorted;
    linear within the bucket holding the q-th observation; the highest finite
    bound when it lies in +Inf. None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def diff(before, after, samples_during=()):
    """The phase as the server saw it (see the module comment)."""
    types = {**before["types"], **after["types"]}
    counters, gauges, hist = {}, {}, {}
    for (name, labels), value in after["samples"].items():
        if not name.startswith(PREFIX):
            continue
        family, suffix = _family(name, types)
        kind = types.get(family, "counter" if name.endswith("_total") else "gauge")
        old = before["samples"].get((name, labels), 0.0)
        if kind == "histogram":
            other = tuple(kv for kv in labels if kv[0] != "le")
            h = hist.setdefault(_series_name(family, other), {"buckets": [], "sum": 0.0, "count": 0.0})
            if suffix == "_bucket":
                le = dict(labels).get("le", "+Inf")
                h["buckets"].append((float("inf") if le in ("+Inf", "Inf") else float(le), value - old))
            elif suffix:
                h[suffix[1:]] = value - old
        elif kind == "counter":
            counters[_series_name(name, labels)] = value - old
        else:
            key = _series_name(name, labels)
            gauges[key] = {"before": before["samples"].get((name, labels)), "after": value}
            during = [s["samples"][(name, labels)] for s in samples_during if (name, labels) in s["samples"]]
            if during:
                gauges[key]["mean_during"] = round(sum(during) / len(during), 3)
                gauges[key]["max_during"] = max(during)
    histograms = {}
    for key, h in hist.items():
        buckets = sorted(h["buckets"])
        entry = {"count": h["count"], "mean": (h["sum"] / h["count"]) if h["count"] else None}
        for q in (0.5, 0.9, 0.99):
            entry[f"p{int(q * 100)}"] = histogram_quantile(q, buckets)
        histograms[key] = entry
    return {"counters": counters, "gauges": gauges, "histograms": histograms}


class Watcher:
    """Scrapes /metrics through a client with fetch(); never raises: a scrape that
    fails is reported as such (the server may be down, or metrics disabled)."""

    def __init__(self, client, interval_s=1.0):
        self.client = client
        self.interval_s = interval_s
        self.error = None

    async def scrape(self):
        try:
            status, _, body = await self.client.fetch("GET", "/metrics", timeout=10.0)
            if status != 200:
                raise RuntimeError(f"GET /metrics answered {status}")
            return parse(body.decode("utf-8", errors="replace"))
        except Exception as e:  # noqa: BLE001 - any failure becomes a line in the report
            self.error = f"{type(e).__name__}: {e}"
            return None

    async def sample_until(self, stop, samples):
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.interval_s)
            except asyncio.TimeoutError:
                snap = await self.scrape()
                if snap:
                    samples.append(snap)
