"""The stream mode's report folder: ``index.html`` with the summary table, and per case a timeline
of its bouts (the bout's label behind, each window's device class at the time its result came, lost
and missing windows marked) and the time from a window's last sample to its result."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harness.config.boards import BOARDS
from harness.report.summary import provenance_html, time_histogram
from harness.verdict.stream import StreamRun, format_stream_table

__all__ = ["TIMELINE_STREAMS", "write_stream_report"]

TIMELINE_STREAMS = 40
"""Bouts drawn per case (the first ones, in stream order; all of them are in stream.json)."""


def _timeline(r: StreamRun, classes: Sequence[str], window: int, out: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10")
    shown = sorted({int(w["stream"]) for w in r.windows})[:TIMELINE_STREAMS]  # type: ignore[call-overload]
    row = {s: k for k, s in enumerate(shown)}
    rate = r.sample_rate_hz or 1.0
    fig, ax = plt.subplots(figsize=(9, 0.8 + 0.22 * max(1, len(shown))), dpi=100)
    for s in shown:
        ws = [w for w in r.windows if w["stream"] == s]
        first = min(int(w["start"]) for w in ws)  # type: ignore[call-overload]
        last = max(int(w["start"]) for w in ws) + window  # type: ignore[call-overload]
        label = int(ws[0]["label"])  # type: ignore[call-overload]
        if label >= 0:
            ax.barh(row[s], (last - first) / rate, left=0, height=0.8, color=colours(label), alpha=0.25)
        for w in ws:
            t = (int(w["start"]) - first + window) / rate  # type: ignore[call-overload]
            state = w["state"]
            if state in ("lost", "missing"):
                ax.plot(t, row[s], marker="x", color="grey", ms=5)
            else:
                ax.plot(t, row[s], marker="o" if state == "verified" else "X", ms=4 if state == "verified" else 7,
                        color=colours(int(w["device_class"])),  # type: ignore[call-overload]
                        markeredgecolor="none" if state == "verified" else "red")
    names = {w["stream"]: f"{w['animal']} {Path(str(w['bout'])).name[:30]}" for w in reversed(r.windows)}
    ax.set_yticks(range(len(shown)), [names[s] for s in shown], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("seconds from the bout's first window start (dot: device class when the result came)")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours(k), label=c) for k, c in enumerate(classes)]
    handles += [plt.Line2D([], [], marker="X", ls="", color="white", markeredgecolor="red", label="mismatch"),
                plt.Line2D([], [], marker="x", ls="", color="grey", label="lost or missing")]
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.9 / max(1, len(shown)) - 0.25),
              ncol=min(8, len(handles)), frameon=False)
    ax.set_title(f"{r.board} {r.variant}: {len(shown)} of {r.streams} bouts (shading: the bout's label)", fontsize=9)
    fig.tight_layout()
    name = f"{r.board}_{r.variant}_timeline.png"
    fig.savefig(out / name, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)
    return name


def _latency(r: StreamRun, out: Path) -> str | None:
    lat = [float(w["last_to_result"]) for w in r.windows if w["last_to_result"] is not None]  # type: ignore[arg-type]
    if not lat or not r.clock_hz:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = np.array(lat) / r.clock_hz * 1e3
    fig, ax = plt.subplots(figsize=(4.8, 3), dpi=100)
    time_histogram(ax, ms)
    ax.set_xlabel(f"last sample to result (ms at {BOARDS[r.board].clock_hz / 1e6:g} MHz)")
    ax.set_ylabel("windows")
    ax.set_title(f"{r.board} {r.variant}: max {ms.max():.3f} ms", fontsize=9)
    fig.tight_layout()
    name = f"{r.board}_{r.variant}_last_to_result.png"
    fig.savefig(out / name, metadata={"Software": None})
    plt.close(fig)
    return name


def write_stream_report(runs: list[StreamRun], out: Path, provenance: dict[str, object], failed: list[str],
                        classes: Sequence[str], window: int) -> Path:
    """``out/index.html`` for a stream-mode run (stream.json beside it holds every window)."""
    out.mkdir(parents=True, exist_ok=True)
    parts = [f"<h1>hil run --mode stream: {'PASS' if runs and not failed and all(r.passed for r in runs) else 'FAIL'}"
             "</h1>", "<p><a href='stream.json'>stream.json</a> (every window of every bout)</p>"]
    if runs:
        parts.append(f"<pre>{html.escape(format_stream_table(runs))}</pre>")
    parts += [f"<p class=bad>FAIL {html.escape(f)}</p>" for f in failed]
    for r in runs:
        parts.append(f"<section><h2>{html.escape(r.board)} / {html.escape(r.variant)} on {html.escape(r.target)}: "
                     f"{'PASS' if r.passed else 'FAIL'}</h2><p>{r.streams} bouts, {r.samples} samples in {r.frames} "
                     f"frames, hop {r.hop}; {r.windows_verified}/{r.windows_expected} windows verified ({r.check}), "
                     f"{r.windows_lost} lost to dropped frames, {len(r.missing)} missing, {len(r.mismatches)} "
                     f"mismatched; device time {html.escape(r.time_unit)}</p>")
        if r.mismatches or r.missing:
            items = "".join(f"<li>{html.escape(m)}</li>" for m in [*r.mismatches, *r.missing][:50])
            parts.append(f"<ul class=bad>{items}</ul>")
        if r.windows:
            parts.append(f"<img src='{_timeline(r, classes, window, out)}' alt='timeline of bouts'>")
            lat = _latency(r, out)
            if lat:
                parts.append(f"<img src='{lat}' alt='last sample to result'>")
        parts.append("</section>")
    parts.append(f"<h2>provenance</h2>{provenance_html(provenance)}")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:1em auto}pre{overflow-x:auto;font-size:12px}"
             ".bad{color:#b00}img{max-width:100%}th{text-align:left;padding-right:1em}")
    (out / "index.html").write_text(f"<!doctype html><meta charset=utf-8><title>hil stream report</title>"
                                    f"<style>{style}</style>" + "\n".join(parts) + "\n")
    return out / "index.html"
