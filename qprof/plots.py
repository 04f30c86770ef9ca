"""Plots: the profile's frames drawn with matplotlib, one function per view.

Each function takes a ``Profile`` (see ``qprof.frames``) and an optional
``ax``; without one it makes a figure with ``matplotlib.pyplot``. Each returns
the axes it drew on. Fingerprints are labelled with their id and the start of
their SQL; every axis names its unit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy

from qprof.frames import PLAN_KINDS, Profile, plan_kind_column, short_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes

HIGHLIGHT = "#d62728"
BASE = "#1f77b4"
MUTED = "#bbbbbb"


def plot_pareto(profile: Profile, top: int = 15, ax: Axes | None = None) -> Axes:
    """Draw the costliest fingerprints' total time as bars, with their cumulative share.

    The bars are the ``top`` fingerprints by total time, costliest first; the
    line, on a twin axis, is the share of the workload's time they make up
    together. Returns the bars' axes (the line's is ``ax.right_ax``).
    """
    ax = _axes(ax, (10, 4.5))
    frame = profile.fingerprints.head(top)
    positions = numpy.arange(len(frame))
    ax.bar(positions, frame["total_ms"], color=BASE)
    ax.set_xticks(positions, _labels(frame), rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("total time (ms)")
    ax.set_title(f"Costliest fingerprints by total time (top {len(frame)})")
    right = ax.twinx()
    right.plot(positions, frame["cumulative_share"] * 100, color=HIGHLIGHT, marker="o")
    right.set_ylabel("cumulative share of workload time (%)")
    right.set_ylim(0, 105)
    ax.right_ax = right  # type: ignore[attr-defined]
    return ax


def plot_time_distribution(
    profile: Profile, top: int = 8, ax: Axes | None = None, kind: str = "box"
) -> Axes:
    """Draw each of the ``top`` costliest fingerprints' per-statement times.

    ``kind`` is ``box`` or ``violin``. Needs the ``statements`` frame (a
    measured trace or a replay); the time axis is logarithmic when the times
    span more than two orders of magnitude.
    """
    ax = _axes(ax, (10, 4.5))
    frame = profile.fingerprints.head(top)
    statements = profile.statements
    groups = statements.groupby("fingerprint", sort=False)["elapsed_ms"]
    data = [
        groups.get_group(fid).to_numpy() if fid in groups.groups else numpy.zeros(0)
        for fid in frame["fingerprint"]
    ]
    labels = _labels(frame)
    positions = numpy.arange(1, len(data) + 1)
    if kind == "violin":
        filled = [values if len(values) else numpy.zeros(1) for values in data]
        if filled:
            ax.violinplot(filled, positions=positions, showmedians=True)
    else:
        ax.boxplot(data, positions=positions, showfliers=True)
    ax.set_xticks(positions, labels, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("time per statement (ms)")
    ax.set_title(f"Time per statement of the {len(data)} costliest fingerprints")
    values = numpy.concatenate(data) if data else numpy.zeros(0)
    positive = values[values > 0]
    if len(positive) and positive.max() / positive.min() > 100:
        ax.set_yscale("log")
    return ax


def plot_n_plus_one(
    profile: Profile,
    context: str | None = None,
    fingerprint: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the statements of one context in order, the looping fingerprint highlighted.

    Without ``context``, the context of the costliest loop (see the ``loops``
    frame) is drawn; ``fingerprint`` picks the loop to highlight (default: the
    costliest loop's in that context). The x axis is the statement's position
    in the workload; points are each statement's time.
    """
    ax = _axes(ax, (10, 4))
    loops = profile.loops
    if context is not None:
        loops = loops[loops["context"] == context]
    if fingerprint is not None:
        loops = loops[loops["fingerprint"] == fingerprint]
    if loops.empty or profile.statements.empty:
        ax.set_title("No N+1 loop in this profile")
        ax.set_xlabel("statement position in the workload")
        ax.set_ylabel("time per statement (ms)")
        return ax
    loop = loops.iloc[0]
    rows = _context_rows(profile, loop)
    looping = rows["fingerprint"] == loop["fingerprint"]
    others = rows[~looping]
    ax.scatter(
        others["position"],
        others["elapsed_ms"],
        s=12,
        color=MUTED,
        label="other statements",
    )
    sql = _fingerprint_sql(profile, str(loop["fingerprint"]))
    ax.scatter(
        rows.loc[looping, "position"],
        rows.loc[looping, "elapsed_ms"],
        s=14,
        color=HIGHLIGHT,
        label=f"loop: {short_label(str(loop['fingerprint']), sql, 40)}",
    )
    ax.set_xlabel("statement position in the workload")
    ax.set_ylabel("time per statement (ms)")
    ax.set_title(
        f"N+1 loop in {loop['context']}: {int(loop['count']):,} statements, "
        f"{loop['elapsed_ms']:.1f} ms"
    )
    ax.legend(loc="upper right", fontsize=8)
    return ax


def plot_plan_kinds(profile: Profile, ax: Axes | None = None) -> Axes:
    """Draw the total time of the fingerprints whose plan has each kind of step.

    Kinds: full scans, index scans, searches, temp B-trees, automatic indexes.
    A fingerprint counts towards every kind its plan has, so the bars can add
    up to more than the workload's time.
    """
    ax = _axes(ax, (8, 3.5))
    # Limitation: a fingerprint's time counts for every step kind of its first plan.
    frame = profile.fingerprints
    totals = [
        float(frame.loc[frame[plan_kind_column(kind)], "total_ms"].sum())
        for kind in PLAN_KINDS
    ]
    positions = numpy.arange(len(PLAN_KINDS))
    ax.barh(positions, totals, color=BASE)
    ax.set_yticks(positions, list(PLAN_KINDS))
    ax.invert_yaxis()
    ax.set_xlabel("total time of the fingerprints whose plan has it (ms)")
    ax.set_title("Time by kind of query plan step")
    return ax


def plot_before_after(
    profile: Profile,
    index: str | None = None,
    metric: str = "vm",
    ax: Axes | None = None,
) -> Axes:
    """Draw, per statement a recommended index serves, its measured cost before and after.

    ``index`` names one recommendation (default: all of them); ``metric`` is
    ``vm`` (VM steps per statement) or ``ms`` (time per statement). The bar
    heights are the ``served`` frame's ``vm_before``/``vm_after`` (or
    ``ms_before``/``ms_after``). The axis is logarithmic when an index saves
    more than a factor of 100.
    """
    ax = _axes(ax, (10, 4.5))
    served = profile.served
    if index is not None:
        served = served[served["name"] == index]
    before, after, unit = (
        ("vm_before", "vm_after", "VM steps per statement")
        if metric == "vm"
        else ("ms_before", "ms_after", "time per statement (ms)")
    )
    positions = numpy.arange(len(served))
    width = 0.4
    ax.bar(positions - width / 2, served[before], width, color=MUTED, label="before")
    ax.bar(positions + width / 2, served[after], width, color=BASE, label="after")
    labels = [
        f"{row['fingerprint']}\n{_short(str(row['name']), 34)}"
        for _, row in served.iterrows()
    ]
    ax.set_xticks(positions, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(unit)
    title = index or "each recommended index"
    ax.set_title(f"Measured before and after {title}")
    ax.legend(fontsize=8)
    low = served[after].to_numpy()
    high = served[before].to_numpy()
    if len(served) and (low > 0).all() and (high / low).max() > 100:
        ax.set_yscale("log")
    return ax


def plot_cost_vs_storage(profile: Profile, ax: Axes | None = None) -> Axes:
    """Draw the workload's VM steps after each pick against the storage the picks take.

    One point per pick in the order the recommender made them, starting from
    the workload with no new index (0 MB); each point is labelled with its
    index.
    """
    ax = _axes(ax, (8, 4.5))
    curve = profile.curve
    ax.plot(curve["storage_mb"], curve["workload_vm"], marker="o", color=BASE)
    for _, row in curve.iterrows():
        ax.annotate(
            f"{int(row['pick'])}: {_short(str(row['name']), 30)}",
            (row["storage_mb"], row["workload_vm"]),
            textcoords="offset points",
            xytext=(5, 5),
            fontsize=7,
        )
    ax.set_xlabel("storage of the recommended indexes (MB)")
    ax.set_ylabel("workload VM steps")
    ax.set_title("Cost versus storage, pick by pick")
    ax.set_ylim(bottom=0)
    return ax


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _figure, made = plt.subplots(figsize=size, layout="constrained")
    return made


def _labels(frame: Any) -> list[str]:
    return [
        short_label(fid, sql, 28)
        for fid, sql in zip(frame["fingerprint"], frame["sql"], strict=True)
    ]


def _context_rows(profile: Profile, loop: Any) -> Any:
    """Return the statements of ``loop``'s context between its first and last repeat."""
    statements = profile.statements
    span = statements[
        (statements["position"] >= loop["first_position"])
        & (statements["position"] <= loop["last_position"])
    ]
    # Limitation: an unlabelled log draws every statement of the loop's span, not one context.
    labelled = span["context"].notna()
    if labelled.any():
        span = span[span["context"] == loop["context"]]
    return span


def _fingerprint_sql(profile: Profile, fingerprint: str) -> str:
    match = profile.fingerprints[profile.fingerprints["fingerprint"] == fingerprint]
    return str(match["sql"].iloc[0]) if len(match) else ""


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
