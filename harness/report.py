"""The report: a summary table for the terminal, and a folder with JSON, an HTML page and PNG
plots (confusion matrices, device-time histograms)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from harness.boards import BOARDS
from harness.data.recordings import CLASS_NAMES
from harness.evaluate import DeviceRun
from harness.metrics import BitExact

__all__ = ["summary_table", "write_report"]


def _vs(r: DeviceRun) -> str:
    v = r.versus_reference
    if v.n == 0:
        return "no verified window"
    if isinstance(v, BitExact):
        return f"bit-exact {v.n_exact}/{v.n}"
    return f"agree {v.class_agreement:.1%} |d|<={v.max_abs_err:.1e}"


def summary_table(runs: list[DeviceRun]) -> str:
    head = (f"{'board':<7}{'variant':<9}{'target':<7}{'verified':>9}{'acc':>7}{'F1':>7}{'MCC':>7}  "
            f"{'vs reference':<26}{'device p50':>12}{'p95':>10}{'max ms':>9}{'RTT p50':>9}{'uJ/inf':>8}{'resends':>8}"
            "  result")
    lines = [head, "-" * len(head)]
    for r in runs:
        lines.append(
            f"{r.board:<7}{r.variant:<9}{r.target:<7}{f'{r.n_verified}/{r.n}':>9}{r.labels.accuracy:>7.3f}"
            f"{r.labels.macro_f1:>7.3f}{r.labels.mcc:>7.3f}  {_vs(r):<26}{r.device_us.p50 / 1e3:>10.2f}ms"
            f"{r.device_us.p95 / 1e3:>8.2f}ms{r.device_us.max / 1e3:>9.2f}{r.rtt_ms.p50:>7.1f}ms"
            f"{r.energy_uj_mean:>8.1f}{r.link.get('retries', 0)!s:>8}  {'PASS' if r.passed else 'FAIL'}")
    units = {r.time_unit for r in runs if r.time_unit != "-"}
    lines.append("device time: " + "; ".join(sorted(units)) + ", converted to ms at the real board clock")
    bases = {r.energy_basis for r in runs if r.energy_basis != "-"}
    lines.append("energy: " + "; ".join(sorted(bases)))
    for r in runs:
        for name, ok, detail in r.checks:
            if not ok:
                lines.append(f"FAIL {r.board}/{r.variant} {name}: {detail}")
    return "\n".join(lines)


def _plots(r: DeviceRun, out: Path) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = f"{r.board}_{r.variant}"
    cm = np.array(r.labels.confusion)
    fig, ax = plt.subplots(figsize=(4, 3.6), dpi=100)
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center", color="black" if v < cm.max() / 2 else "white")
    ax.set_xticks(range(4), CLASS_NAMES, rotation=30)
    ax.set_yticks(range(4), CLASS_NAMES)
    ax.set_xlabel("device class")
    ax.set_ylabel("label")
    ax.set_title(f"{r.board} {r.variant}: MCC {r.labels.mcc:.3f}")
    fig.tight_layout()
    cm_png = f"{stem}_confusion.png"
    fig.savefig(out / cm_png, metadata={"Software": None})
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 3), dpi=100)
    ax.hist(np.array(r.device_ms), bins=30, color="tab:orange")
    ax.set_xlabel(f"device time per inference at {BOARDS[r.board].clock_hz / 1e6:g} MHz (ms)")
    ax.set_ylabel("windows")
    ax.set_title(f"{r.board} {r.variant}: p50 {r.device_us.p50 / 1e3:.2f} ms")
    fig.tight_layout()
    lat_png = f"{stem}_latency.png"
    fig.savefig(out / lat_png, metadata={"Software": None})
    plt.close(fig)
    return cm_png, lat_png


def _failures_html(r: DeviceRun) -> str:
    if not r.failures and not r.aborted:
        return ""
    rows = "".join(f"<tr><td>{f['index']}</td><td>{html.escape(str(f['reason']))}</td>"
                   f"<td>{len(list(f.get('retries') or []))}</td></tr>"  # type: ignore[call-overload]
                   for f in r.failures[:50])
    more = f"<p>... {len(r.failures) - 50} more in report.json</p>" if len(r.failures) > 50 else ""
    aborted = f"<p class=bad>stream stopped: {html.escape(r.aborted)}</p>" if r.aborted else ""
    return (f"{aborted}<table><caption>windows not verified ({len(r.failures)})</caption><tr><th>window</th>"
            f"<th>reason</th><th>resends</th></tr>{rows}</table>{more}")


def write_report(runs: list[DeviceRun], out: Path, provenance: dict[str, object]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(
        {"provenance": provenance, "runs": [r.as_dict() for r in runs]}, indent=1, default=str) + "\n")
    rows = []
    for r in runs:
        if r.n_verified == 0:
            rows.append(f"<section><h2>{r.board} / {r.variant} on {r.target}: FAIL</h2>"
                        f"<p class=bad>{html.escape(r.aborted or 'no window verified')}</p>{_failures_html(r)}"
                        "</section>")
            continue
        cm_png, lat_png = _plots(r, out)
        checks = "".join(f"<li class={'ok' if ok else 'bad'}>{html.escape(n)}: {html.escape(d)}</li>"
                         for n, ok, d in r.checks)
        rows.append(
            f"<section><h2>{r.board} / {r.variant} on {r.target}: {'PASS' if r.passed else 'FAIL'}</h2>"
            f"<p>firmware {html.escape(str(r.info.get('build_id')))}, model hash {r.info.get('model_hash')}, "
            f"{r.n} windows; accuracy {r.labels.accuracy:.3f}, macro F1 {r.labels.macro_f1:.3f}, "
            f"MCC {r.labels.mcc:.3f}; {html.escape(_vs(r))}; device time p50 {r.device_us.p50 / 1e3:.2f} ms, "
            f"p95 {r.device_us.p95 / 1e3:.2f} ms, max {r.device_us.max / 1e3:.2f} ms "
            f"({html.escape(r.time_unit)}); host round trip p50 {r.rtt_ms.p50:.1f} ms; "
            f"energy {r.energy_uj_mean:.1f} uJ per inference ({html.escape(r.energy_basis)})</p>"
            f"<ul>{checks}</ul>{_failures_html(r)}<img src='{cm_png}'><img src='{lat_png}'></section>")
    prov = "".join(f"<li>{html.escape(k)}: {html.escape(str(v))}</li>" for k, v in provenance.items())
    page = ("<!doctype html><meta charset=utf-8><title>cattle-hil report</title><style>body{font-family:sans-serif;"
            "max-width:70em;margin:2em auto}.ok{color:#060}.bad{color:#a00;font-weight:bold}img{margin:.5em}</style>"
            f"<h1>cattle-hil report</h1><ul>{prov}</ul><pre>{html.escape(summary_table(runs))}</pre>{''.join(rows)}")
    (out / "index.html").write_text(page)
    return out
