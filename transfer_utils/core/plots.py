"""Plot helpers shared by the lessons: small, titled, labelled figures.

Lessons: 00, 01, 02, 03, 04, 05, 06, 07, 08, 09, 10, 11, 12.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def setup(dpi: int = 80) -> None:
    """Modest default figure size and resolution, so notebooks stay light to store and read."""
    import matplotlib as mpl

    mpl.rcParams.update({"figure.figsize": (6.4, 3.6), "figure.dpi": dpi, "savefig.dpi": dpi,
                         "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False})


def image_rows(rows: dict[str, np.ndarray], *, title: str, n: int = 8, cmap: str | None = None):
    """One row of the first ``n`` images per entry of ``rows`` (its key labels the row); returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), n, figsize=(n, 1.15 * len(rows)), squeeze=False)
    for row, (label, images) in enumerate(rows.items()):
        for col in range(n):
            axes[row, col].imshow(images[col], cmap=cmap)
            axes[row, col].set_xticks([]), axes[row, col].set_yticks([])
        axes[row, 0].set_ylabel(label, fontsize="small")
    fig.suptitle(title)
    return fig


def mean_and_std(rows: Sequence[dict[str, Any]], x: str, y: str, group: str) -> dict[Any, tuple]:
    """Per group: sorted x values, mean of y and its standard deviation over repeats (e.g. seeds)."""
    out = {}
    for g in dict.fromkeys(r[group] for r in rows):
        xs = sorted({r[x] for r in rows if r[group] == g})
        ys = [[r[y] for r in rows if r[group] == g and r[x] == xv] for xv in xs]
        out[g] = (np.array(xs), np.array([np.mean(v) for v in ys]), np.array([np.std(v) for v in ys]))
    return out


def plot_curves(rows: Sequence[dict[str, Any]], x: str, y: str, group: str, *, title: str,
                xlabel: str | None = None, ylabel: str | None = None, logx: bool = False, ax: Any = None):
    """Mean ± std of ``y`` against ``x``, one line per ``group`` (e.g. learning curves over seeds)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots()[1]
    for name, (xs, mean, std) in mean_and_std(rows, x, y, group).items():
        ax.plot(xs, mean, marker="o", label=str(name))
        ax.fill_between(xs, mean - std, mean + std, alpha=0.2)
    if logx:
        ax.set_xscale("log", base=2)
    ax.set(title=title, xlabel=xlabel or x, ylabel=ylabel or y)
    ax.legend(fontsize="small")
    return ax


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], *, title: str, ax: Any = None):
    """A confusion matrix with counts written in the cells (rows: true class, columns: predicted)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(3.2 + 0.4 * len(classes), 2.8 + 0.4 * len(classes)))[1]
    ax.imshow(matrix, cmap="Blues")
    ax.grid(False)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, classes, rotation=45, ha="right")
    ax.set_yticks(ticks, classes)
    for i, j in np.ndindex(matrix.shape):
        color = "white" if matrix[i, j] > matrix.max() / 2 else "black"
        ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=color)
    ax.set(title=title, xlabel="predicted", ylabel="true")
    return ax


def plot_sweep(csv_path: str, x: str, y: str, out_path: str, group: str | None = None) -> str:
    """Aggregate a sweep's ``results.csv``: mean ± std of metric ``y`` against parameter ``x``."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["status"] == "ok" and r.get(y, "") != ""]
    if not rows:
        raise ValueError(f"no successful runs with metric {y!r} in {csv_path}")
    for r in rows:
        r[y] = float(r[y])
        try:
            r[x] = float(r[x])
        except ValueError:
            pass
        r["_group"] = r[group] if group else "all runs"
    fig, ax = plt.subplots()
    plot_curves(rows, x, y, "_group", title=f"{y} against {x} (mean ± std over runs)", ax=ax)
    fig.tight_layout()
    fig.savefig(out_path)
    plt.close(fig)
    return out_path
