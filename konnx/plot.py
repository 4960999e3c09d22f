"""Pictures for `konnx padding`: the input grid, its padding, and the first and last window,
for Keras 'same' and for the explicit pads side by side.

Import this module only when drawing: matplotlib loads here (Agg canvas, no pyplot, no global
state). The scene is built once as plain rectangles; PNG (and any other raster/vector format
matplotlib knows) goes through matplotlib, SVG is written directly so that every cell region
is a <rect> element a test or a browser can inspect.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from .padding_explain import AxisPadding, PaddingExplanation, side_names

COLOURS = {"input": "#dbe7f3", "pad": "#f4a261", "crop": "#9e9e9e", "first": "#1f77b4", "last": "#d62728",
           "grid": "#ffffff", "text": "#222222", "background": "#ffffff"}
LEGEND = (("input", "input"), ("pad", "zero padding"), ("crop", "cropped"),
          ("first", "first window"), ("last", "last window"))
_GRID_LINES_UP_TO = 64  # draw cell borders when an axis has at most this many cells


@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float
    kind: str  # input | pad | crop | first | last (windows: outline) | first_tap | last_tap


@dataclass
class Panel:
    title: str
    width: int  # columns (the second axis, or the only one)
    height: int  # rows (the first axis; 1 for 1D)
    rects: list = field(default_factory=list)


def _axis_layout(ax: AxisPadding, before: int, after: int):
    """(extent, offset of input cell 0, cropped input ranges) along one axis."""
    offset = max(before, 0)
    extent = offset + ax.size + max(after, 0)
    crops = []
    if before < 0:
        crops.append((offset, offset + min(-before, ax.size)))
    if after < 0:
        crops.append((offset + max(ax.size + after, 0), offset + ax.size))
    return extent, offset, crops


def _strips(offset, size, before, after):
    """Padding ranges along one axis: [start, stop) in grid coordinates."""
    out = []
    if before > 0:
        out.append((0, before))
    if after > 0:
        out.append((offset + size, offset + size + after))
    return out


def _window_starts(ax: AxisPadding, offset: int, before: int, out: int):
    """Grid coordinates of the first and last window starts (None when there is no window)."""
    if out <= 0:
        return None
    first = offset - before
    return first, first + (out - 1) * ax.stride


def panel(axes, pads, outs, label: str) -> Panel:
    """One panel for up to two axes (rows = axes[0] when there are two)."""
    two_d = len(axes) >= 2
    row_ax, col_ax = (axes[0], axes[1]) if two_d else (None, axes[0])
    col_pads = pads[1] if two_d else pads[0]
    cext, coff, ccrop = _axis_layout(col_ax, *col_pads)
    if two_d:
        rext, roff, rcrop = _axis_layout(row_ax, *pads[0])
        rsize = row_ax.size
    else:
        rext, roff, rcrop, rsize = 1, 0, [], 1
    p = Panel(title="", width=cext, height=rext)
    p.rects.append(Rect(coff, roff, col_ax.size, rsize, "input"))
    for a, b in _strips(coff, col_ax.size, *col_pads):
        p.rects.append(Rect(a, roff, b - a, rsize, "pad"))
    if two_d:
        for a, b in _strips(roff, rsize, *pads[0]):
            p.rects.append(Rect(0, a, cext, b - a, "pad"))
    for a, b in ccrop:
        p.rects.append(Rect(a, roff, b - a, rsize, "crop"))
    for a, b in rcrop:
        p.rects.append(Rect(coff, a, col_ax.size, b - a, "crop"))

    cstarts = _window_starts(col_ax, coff, col_pads[0], outs[-1] if not two_d else outs[1])
    rstarts = _window_starts(row_ax, roff, pads[0][0], outs[0]) if two_d else (0, 0)
    if cstarts is not None and rstarts is not None:
        ceff = (col_ax.kernel - 1) * col_ax.dilation + 1
        reff = (row_ax.kernel - 1) * row_ax.dilation + 1 if two_d else 1
        rtaps = [j * row_ax.dilation for j in range(row_ax.kernel)] if two_d else [0]
        ctaps = [j * col_ax.dilation for j in range(col_ax.kernel)]
        for which, (r0, c0) in (("last", (rstarts[1], cstarts[1])), ("first", (rstarts[0], cstarts[0]))):
            for dr in rtaps:
                for dc in ctaps:
                    p.rects.append(Rect(c0 + dc + 0.3, r0 + dr + 0.3, 0.4, 0.4, f"{which}_tap"))
            inset = 0.06 if which == "first" else 0.12
            p.rects.append(Rect(c0 + inset, r0 + inset, ceff - 2 * inset, reff - 2 * inset, which))
    p.title = _title(label, axes[:2], pads, outs)
    return p


def _title(label, axes, pads, outs) -> str:
    shape = "x".join(str(o) for o in outs)
    sides = []
    for i, (b, a) in enumerate(pads[:len(axes)]):
        _, before, after, _ = side_names(i, len(axes))
        sides.append(f"{before} {b} / {after} {a}")
    return f"{label}: output {shape}\npads " + ", ".join(sides)


def scene(explanation: PaddingExplanation) -> list[Panel]:
    """The two panels: Keras 'same', and the explicit pads."""
    axes = list(explanation.axes[:2])
    same = panel(axes, [a.same_pads for a in axes], [a.same_out for a in axes], "Keras 'same'")
    if all(a.explicit_pads == (0, 0) for a in axes):
        explicit_label = "no pads (= 'valid')"
    else:
        explicit_label = "explicit pads" + (" (= 'same')" if explanation.same_matches else "")
    expl = panel(axes, [a.explicit_pads for a in axes], [a.explicit_out for a in axes], explicit_label)
    return [same, expl]


# --------------------------------------------------------------------------- matplotlib

def _draw_panel(ax, p: Panel, width: int, height: int):
    from matplotlib.patches import Rectangle

    for r in p.rects:
        if r.kind in ("first", "last"):
            ax.add_patch(Rectangle((r.x, r.y), r.w, r.h, fill=False, edgecolor=COLOURS[r.kind], linewidth=2.5))
        elif r.kind.endswith("_tap"):
            ax.add_patch(Rectangle((r.x, r.y), r.w, r.h, facecolor=COLOURS[r.kind[:-4]], alpha=0.6, linewidth=0))
        else:
            ax.add_patch(Rectangle((r.x, r.y), r.w, r.h, facecolor=COLOURS[r.kind], linewidth=0,
                                   hatch="//" if r.kind == "crop" else None))
    if max(p.width, p.height) <= _GRID_LINES_UP_TO:
        for x in range(p.width + 1):
            ax.plot([x, x], [0, p.height], color=COLOURS["grid"], linewidth=1)
        for y in range(p.height + 1):
            ax.plot([0, p.width], [y, y], color=COLOURS["grid"], linewidth=1)
    ax.set_xlim(-0.2, width + 0.2)  # one scale for every panel: cells line up
    ax.set_ylim(height + 0.2, -0.2)  # row 0 at the top
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(p.title, fontsize=10)


def _save_matplotlib(panels, path: Path, dpi: int, fmt: str):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    width = max(p.width for p in panels)
    height = max(p.height for p in panels)
    panel_w = 10 / len(panels)
    fig = Figure(figsize=(10, max(2.2, min(panel_w * height / width + 1.4, 9))), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axs = fig.subplots(1, len(panels))
    for ax, p in zip(axs, panels):
        _draw_panel(ax, p, width, height)
    handles = [Patch(facecolor=COLOURS[k], edgecolor=COLOURS[k], label=t) for k, t in LEGEND]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=9)
    fig.savefig(path, format=fmt, dpi=dpi, facecolor=COLOURS["background"], bbox_inches="tight", pad_inches=0.2)


# --------------------------------------------------------------------------- SVG

def _svg(panels, scale: float = 24.0) -> str:
    pad, title_h, legend_h = 16, 48, 30
    widths = [p.width * scale for p in panels]
    total_w = sum(widths) + pad * (len(panels) + 1)
    total_h = max(p.height for p in panels) * scale + title_h + legend_h + 2 * pad
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0f}" height="{total_h:.0f}" '
           f'viewBox="0 0 {total_w:.0f} {total_h:.0f}">',
           f'<rect class="background" x="0" y="0" width="{total_w:.0f}" height="{total_h:.0f}" '
           f'fill="{COLOURS["background"]}"/>']
    x0 = pad
    for p, w in zip(panels, widths):
        y0 = pad + title_h
        out.append(f'<g class="panel" transform="translate({x0:.1f},{y0:.1f})">')
        for i, line in enumerate(p.title.split("\n")):
            out.append(f'<text x="0" y="{-title_h + 16 + 16 * i}" font-family="sans-serif" font-size="13" '
                       f'fill="{COLOURS["text"]}">{escape(line)}</text>')
        for r in p.rects:
            geo = f'x="{r.x * scale:.1f}" y="{r.y * scale:.1f}" width="{r.w * scale:.1f}" height="{r.h * scale:.1f}"'
            if r.kind in ("first", "last"):
                out.append(f'<rect class="{r.kind}" {geo} fill="none" stroke="{COLOURS[r.kind]}" stroke-width="3"/>')
            elif r.kind.endswith("_tap"):
                out.append(f'<rect class="{r.kind}" {geo} fill="{COLOURS[r.kind[:-4]]}" fill-opacity="0.6"/>')
            else:
                out.append(f'<rect class="{r.kind}" {geo} fill="{COLOURS[r.kind]}"/>')
        if max(p.width, p.height) <= _GRID_LINES_UP_TO:
            for x in range(p.width + 1):
                out.append(f'<line x1="{x * scale}" y1="0" x2="{x * scale}" y2="{p.height * scale}" '
                           f'stroke="{COLOURS["grid"]}"/>')
            for y in range(p.height + 1):
                out.append(f'<line x1="0" y1="{y * scale}" x2="{p.width * scale}" y2="{y * scale}" '
                           f'stroke="{COLOURS["grid"]}"/>')
        out.append("</g>")
        x0 += w + pad
    lx, ly = pad, total_h - legend_h + 4
    for kind, text in LEGEND:
        out.append(f'<rect class="legend" x="{lx}" y="{ly}" width="14" height="14" fill="{COLOURS[kind]}"/>')
        out.append(f'<text x="{lx + 18}" y="{ly + 12}" font-family="sans-serif" font-size="12">{escape(text)}</text>')
        lx += 30 + 7 * len(text)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def draw(explanation: PaddingExplanation, path, *, fmt: str = None, dpi: int = 100) -> Path:
    """Draw `explanation` to `path`. fmt (default: the file's suffix, else png): "svg" is
    written directly, anything else through matplotlib's Agg canvas (png, pdf, ...)."""
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "png").lower()
    panels = scene(explanation)
    if fmt == "svg":
        path.write_text(_svg(panels))
    else:
        _save_matplotlib(panels, path, dpi, fmt)
    return path
