"""Line charts as standalone SVG (no plotting library: the tool runs on a bare
server). Axes with "nice" ticks, linear or log scale, gridlines, legend, reference
lines. figures.py decides what to draw."""
import math
from xml.sax.saxutils import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'


def fmt_tick(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    if a >= 1:
        return f"{v:,.10g}"
    return f"{v:.3g}"


def linear_ticks(lo, hi, target=5, integer=False):
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / target
    if integer:
        raw = max(raw, 1.0)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw and (not integer or float(m * mag).is_integer()))
    start = math.floor(lo / step + 1e-9) * step
    ticks, v = [], start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    if ticks[-1] < hi:  # end on a tick above the data: headroom for the legend
        ticks.append(round(v, 12))
    return ticks


def log_ticks(lo, hi):
    """Decades, plus 2 and 5 when the range spans few decades."""
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1, 2, 5) if k1 - k0 <= 3 else (1,)
    ticks = [m * 10 ** k for k in range(k0, k1 + 1) for m in mults]
    return [t for t in ticks if lo * 0.999 <= t <= hi * 1.001] or [lo, hi]


class Axis:
    def __init__(self, values, log, zero):
        vals = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log)]
        self.log = log
        if not vals:
            vals = [1.0, 10.0] if log else [0.0, 1.0]
        lo, hi = min(vals), max(vals)
        if log:
            self.lo = 10 ** math.floor(math.log10(lo))
            self.hi = 10 ** math.ceil(math.log10(hi))
            if self.hi <= self.lo:
                self.hi = self.lo * 10
            self.ticks = log_ticks(self.lo, self.hi)
        else:
            if zero:
                lo = min(lo, 0.0)
            if hi == lo:
                hi = lo + (abs(lo) or 1.0)
            self.ticks = linear_ticks(lo, hi, integer=all(float(v).is_integer() for v in vals))
            self.lo, self.hi = min(self.ticks[0], lo), max(self.ticks[-1], hi)

    def frac(self, v):
        if self.log:
            return (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        return (v - self.lo) / (self.hi - self.lo)


class Chart:
    def __init__(self, title, xlabel, ylabel, log_x=False, log_y=False, y_zero=True):
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.log_x, self.log_y, self.y_zero = log_x, log_y, y_zero
        self.series = []
        self.hlines = []
        self.vlines = []

    def line(self, name, xs, ys, color=None, dash=None, markers=True):
        color = color or PALETTE[len(self.series) % len(PALETTE)]
        self.series.append((name, list(xs), list(ys), color, dash, markers))
        return self

    def hline(self, y, label, color="#555"):
        self.hlines.append((y, label, color))

    def vline(self, x, label, color="#555"):
        self.vlines.append((x, label, color))

    def _ok(self, x, y):
        return (x is not None and y is not None and math.isfinite(x) and math.isfinite(y)
                and (x > 0 or not self.log_x) and (y > 0 or not self.log_y))

    def _legend_corner(self, px, py, pw, ph, lw, lh, X, Y):
        """The inner corner whose legend box would hide the fewest data points."""
        points = []
        for s in self.series:  # the markers and 8 samples along every line segment
            pts = [(X(x), Y(y)) for x, y in zip(s[1], s[2]) if self._ok(x, y)]
            points += pts
            for (a, b), (c, d) in zip(pts, pts[1:]):
                points += [(a + (c - a) * k / 8, b + (d - b) * k / 8) for k in range(1, 8)]
        corners = [(px + 8, py + 8), (px + pw - lw - 8, py + 8), (px + 8, py + ph - lh - 8),
                   (px + pw - lw - 8, py + ph - lh - 8)]

        def hidden(corner):
            cx, cy = corner
            return sum(1 for a, b in points if cx - 4 <= a <= cx + lw + 4 and cy - 4 <= b <= cy + lh + 4)
        return min(corners, key=hidden)

    def render(self, left, top, width, height):
        m_l, m_r, m_t, m_b = 64, 16, 30, 44
        px, py, pw, ph = left + m_l, top + m_t, width - m_l - m_r, height - m_t - m_b
        xs = [x for s in self.series for x in s[1]] + [v[0] for v in self.vlines]
        ys = [y for s in self.series for y in s[2]] + [h[0] for h in self.hlines]
        ax_x = Axis(xs, self.log_x, zero=False)
        ax_y = Axis(ys, self.log_y, zero=self.y_zero)

        def X(v):
            return px + pw * ax_x.frac(v)

        def Y(v):
            return py + ph * (1 - ax_y.frac(v))

        out = [f'<text x="{left + width / 2:.1f}" y="{top + 18}" text-anchor="middle" font-size="14" '
               f'font-weight="bold" {FONT}>{escape(self.title)}</text>',
               f'<rect x="{px}" y="{py}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>']
        for t in ax_y.ticks:
            y = Y(t)
            out.append(f'<line x1="{px}" y1="{y:.1f}" x2="{px + pw}" y2="{y:.1f}" stroke="#e5e5e5"/>')
            out.append(f'<text x="{px - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" {FONT}>'
                       f'{fmt_tick(t)}</text>')
        for t in ax_x.ticks:
            x = X(t)
            out.append(f'<line x1="{x:.1f}" y1="{py}" x2="{x:.1f}" y2="{py + ph}" stroke="#eeeeee"/>')
            out.append(f'<text x="{x:.1f}" y="{py + ph + 15}" text-anchor="middle" font-size="11" {FONT}>'
                       f'{fmt_tick(t)}</text>')
        out.append(f'<text x="{px + pw / 2:.1f}" y="{top + height - 8}" text-anchor="middle" font-size="12" '
                   f'{FONT}>{escape(self.xlabel)}</text>')
        cy = py + ph / 2
        out.append(f'<text x="{left + 14}" y="{cy:.1f}" text-anchor="middle" font-size="12" '
                   f'transform="rotate(-90 {left + 14} {cy:.1f})" {FONT}>{escape(self.ylabel)}</text>')
        for y, label, color in self.hlines:
            if self._ok(ax_x.lo, y) and ax_y.lo <= y <= ax_y.hi:
                out.append(f'<line x1="{px}" y1="{Y(y):.1f}" x2="{px + pw}" y2="{Y(y):.1f}" stroke="{color}" '
                           f'stroke-dasharray="6 4"/>')
                out.append(f'<text x="{px + pw - 4}" y="{Y(y) - 4:.1f}" text-anchor="end" font-size="11" '
                           f'fill="{color}" {FONT}>{escape(label)}</text>')
        for x, label, color in self.vlines:
            if ax_x.lo <= x <= ax_x.hi:
                out.append(f'<line x1="{X(x):.1f}" y1="{py}" x2="{X(x):.1f}" y2="{py + ph}" stroke="{color}" '
                           f'stroke-dasharray="2 3"/>')
                out.append(f'<text x="{X(x) + 4:.1f}" y="{py + ph - 6}" font-size="11" fill="{color}" {FONT}>'
                           f'{escape(label)}</text>')
        for name, sx, sy, color, dash, markers in self.series:
            segments, current = [], []
            for x, y in zip(sx, sy):
                if self._ok(x, y):
                    current.append((X(x), Y(y)))
                elif current:
                    segments.append(current)
                    current = []
            if current:
                segments.append(current)
            style = f' stroke-dasharray="{dash}"' if dash else ""
            for seg in segments:
                pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in seg)
                out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{style}/>')
                if markers:
                    out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{color}"/>' for a, b in seg]
        shown = [s for s in self.series if s[0]]
        if shown:
            lw = 16 + 7 * max(len(s[0]) for s in shown) + 26
            lh = 16 * len(shown) + 8
            lx, ly = self._legend_corner(px, py, pw, ph, lw, lh, X, Y)
            out.append(f'<rect x="{lx}" y="{ly}" width="{lw}" height="{lh}" fill="#fff" '
                       f'fill-opacity="0.85" stroke="#ccc"/>')
            for i, (name, _, _, color, dash, _) in enumerate(shown):
                y = ly + 14 + 16 * i
                style = f' stroke-dasharray="{dash}"' if dash else ""
                out.append(f'<line x1="{lx + 6}" y1="{y - 4}" x2="{lx + 28}" y2="{y - 4}" stroke="{color}" '
                           f'stroke-width="2"{style}/>')
                out.append(f'<text x="{lx + 34}" y="{y}" font-size="11" {FONT}>{escape(name)}</text>')
        return out


def figure(title, charts, subtitle="", cols=3, panel_w=430, panel_h=310):
    """Charts in a grid under a title; returns the SVG document."""
    rows = math.ceil(len(charts) / cols)
    cols = min(cols, len(charts))
    head = 52 if subtitle else 34
    width, height = cols * panel_w, head + rows * panel_h
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}">',
             f'<rect width="{width}" height="{height}" fill="#fafafa"/>',
             f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold" {FONT}>'
             f'{escape(title)}</text>']
    if subtitle:
        parts.append(f'<text x="{width / 2}" y="40" text-anchor="middle" font-size="12" fill="#444" {FONT}>'
                     f'{escape(subtitle)}</text>')
    for i, chart in enumerate(charts):
        r, c = divmod(i, cols)
        parts += chart.render(c * panel_w, head + r * panel_h, panel_w, panel_h)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
