"""Plots: what each one draws, read back from the axes (Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import qprof  # noqa: E402
from qprof import plots  # noqa: E402
from qprof.frames import Profile  # noqa: E402

from .small_workload import LOOP, POINT_SQL, SCAN_SQL, small_inputs, small_profile  # noqa: E402


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Profile:
    return small_profile(small_inputs(tmp_path_factory))


@pytest.fixture
def ax():
    figure = Figure()
    return figure.subplots()


def tick_texts(ax, axis: str = "x") -> list[str]:
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def test_pareto_draws_one_bar_per_fingerprint_with_cumulative_share(replayed, ax):
    drawn = plots.plot_pareto(replayed, top=2, ax=ax)
    assert drawn is ax
    top2 = replayed.fingerprints.head(2)
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx(top2["total_ms"].tolist())
    labels = tick_texts(ax)
    assert len(labels) == 2
    for label, fid in zip(labels, top2["fingerprint"], strict=True):
        assert label.startswith(fid)
    (line,) = ax.right_ax.get_lines()
    assert line.get_ydata() == pytest.approx((top2["cumulative_share"] * 100).tolist())
    assert "ms" in ax.get_ylabel() and "%" in ax.right_ax.get_ylabel()


def test_time_distribution_has_one_box_per_fingerprint_shown(replayed, ax):
    plots.plot_time_distribution(replayed, top=3, ax=ax)
    labels = tick_texts(ax)
    assert [label.split()[0] for label in labels] == replayed.fingerprints[
        "fingerprint"
    ].tolist()
    loop = qprof.fingerprint_sql(POINT_SQL).id
    position = labels.index(next(label for label in labels if label.startswith(loop)))
    times = replayed.statements.loc[
        replayed.statements["fingerprint"] == loop, "elapsed_ms"
    ]
    medians = [
        line
        for line in ax.get_lines()
        if line.get_color() in ("C1", "#ff7f0e", "orange")
    ]
    assert medians[position].get_ydata()[0] == pytest.approx(numpy.median(times))
    assert "ms" in ax.get_ylabel()


def test_violin_variant_draws_the_same_fingerprints(replayed, ax):
    plots.plot_time_distribution(replayed, top=2, ax=ax, kind="violin")
    assert len(tick_texts(ax)) == 2


def test_n_plus_one_timeline_highlights_the_loop_statements(replayed, ax):
    plots.plot_n_plus_one(replayed, ax=ax)
    others, loop = ax.collections
    loop_fid = qprof.fingerprint_sql(POINT_SQL).id
    statements = replayed.statements
    expected = statements.loc[statements["fingerprint"] == loop_fid, "position"]
    assert len(loop.get_offsets()) == LOOP
    assert loop.get_offsets()[:, 0].tolist() == expected.tolist()
    assert len(others.get_offsets()) == 0  # nothing else ran in GET /cart
    assert "GET /cart" in ax.get_title()
    assert loop_fid in ax.get_legend().get_texts()[1].get_text()


def test_plan_kinds_bars_are_the_time_of_fingerprints_with_each_step(replayed, ax):
    plots.plot_plan_kinds(replayed, ax=ax)
    widths = dict(
        zip(tick_texts(ax, "y"), [bar.get_width() for bar in ax.patches], strict=True)
    )
    frame = replayed.fingerprints
    scan = frame.loc[frame["fingerprint"] == qprof.fingerprint_sql(SCAN_SQL).id]
    assert widths["full scan"] == pytest.approx(scan["total_ms"].sum())
    assert widths["search"] == pytest.approx(
        frame.loc[frame["has_search"], "total_ms"].sum()
    )
    assert widths["automatic index"] == 0
    assert "ms" in ax.get_xlabel()


def test_before_after_bars_are_the_measured_numbers(replayed, ax):
    plots.plot_before_after(replayed, ax=ax)
    served = replayed.served
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx(
        served["vm_before"].tolist() + served["vm_after"].tolist()
    )
    assert tick_texts(ax)[0].startswith(served["fingerprint"].iloc[0])
    assert "VM steps" in ax.get_ylabel()


def test_before_after_in_time_for_one_index(replayed, ax):
    name = replayed.recommendations["name"].iloc[0]
    plots.plot_before_after(replayed, index=name, metric="ms", ax=ax)
    served = replayed.served[replayed.served["name"] == name]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights == pytest.approx(
        served["ms_before"].tolist() + served["ms_after"].tolist()
    )
    assert "ms" in ax.get_ylabel()


def test_cost_versus_storage_follows_the_picks(replayed, ax):
    plots.plot_cost_vs_storage(replayed, ax=ax)
    (line,) = ax.get_lines()
    curve = replayed.curve
    assert line.get_xdata().tolist() == pytest.approx(curve["storage_mb"].tolist())
    assert line.get_ydata().tolist() == pytest.approx(curve["workload_vm"].tolist())
    assert "MB" in ax.get_xlabel() and "VM steps" in ax.get_ylabel()


def test_without_axes_a_new_figure_is_made(replayed):
    drawn = plots.plot_pareto(replayed)
    try:
        assert drawn.figure is not None and len(drawn.patches) == 3
    finally:
        plt.close(drawn.figure)


def test_timeline_says_so_when_there_is_no_loop(tmp_path: Path, ax):
    db, _trace = small_inputs_at(tmp_path)
    workload = tmp_path / "one.sql"
    workload.write_text("SELECT count(*) FROM items;\n", encoding="utf-8")
    profile = qprof.replay_profile(workload, db)
    plots.plot_n_plus_one(profile, ax=ax)
    assert ax.get_title() == "No N+1 loop in this profile"


def small_inputs_at(folder: Path) -> tuple[Path, Path]:
    from .small_workload import build_items_db, write_trace

    return build_items_db(folder / "items.db"), write_trace(folder / "trace.jsonl")
