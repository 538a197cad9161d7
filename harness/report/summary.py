"""The report: a summary table for the terminal, and a folder with JSON, an HTML page and PNG
plots (confusion matrices, device-time histograms)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from harness.config.boards import BOARDS
from harness.verdict.evaluate import DeviceRun
from harness.verdict.metrics import BitExact

__all__ = ["summary_table", "write_report"]


def _vs(r: DeviceRun) -> str:
    v = r.versus_reference
    if v.n == 0:
        return "no verified window"
    if isinstance(v, BitExact):
        return f"bit-exact {v.n_exact}/{v.n}"
    return f"agree {v.class_agreement:.1%} |d|<={v.max_abs_err:.1e}"


def check_text(name: str, detail: str) -> str:
    """``name: detail``, or the detail alone when it already starts with the name (``recall walking
    0.520 ... below the floor``, not ``recall walking: recall walking 0.520 ...``)."""
    return detail if detail.startswith(name + " ") or detail.startswith(name + ":") else f"{name}: {detail}"


def summary_table(runs: list[DeviceRun]) -> str:
    bw = max([7, *(len(r.board) + 1 for r in runs)])
    head = (f"{'board':<{bw}}{'variant':<9}{'target':<7}{'verified':>9}{'acc':>7}{'F1':>7}{'MCC':>7}  "
            f"{'vs reference':<26}{'device p50':>12}{'p95':>10}{'max ms':>9}{'RTT p50':>9}{'uJ/inf':>8}{'resends':>8}"
            "  result")
    lines = [head, "-" * len(head)]
    for r in runs:
        lines.append(
            f"{r.board:<{bw}}{r.variant:<9}{r.target:<7}{f'{r.n_verified}/{r.n}':>9}{r.labels.accuracy:>7.3f}"
            f"{r.labels.macro_f1:>7.3f}{r.labels.mcc:>7.3f}  {_vs(r):<26}{r.device_us.p50 / 1e3:>10.2f}ms"
            f"{r.device_us.p95 / 1e3:>8.2f}ms{r.device_us.max / 1e3:>9.2f}{r.rtt_ms.p50:>7.1f}ms"
            f"{r.energy_uj_mean:>8.1f}{r.link.get('retries', 0)!s:>8}  {'PASS' if r.passed else 'FAIL'}")
    for r in runs:
        rec = [f"{c['class']} {c['recall']:.3f}" if c["recall"] is not None else f"{c['class']} -"
               for c in r.per_class()]
        if r.labels.n and rec:
            lines.append(f"recall {r.board}/{r.variant}: " + ", ".join(rec))
    units = {r.time_unit for r in runs if r.time_unit != "-"}
    if units:
        lines.append("device time: " + "; ".join(sorted(units)) + ", converted to ms at the real board clock")
    bases = {r.energy_basis for r in runs if r.energy_basis != "-"}
    if bases:
        lines.append("energy: " + "; ".join(sorted(bases)))
    if not units and not bases:
        lines.append("device time, energy: none measured (no case ran a window)")
    for r in runs:
        for name, ok, detail in r.checks:
            if not ok:
                lines.append(f"FAIL {r.board}/{r.variant} {check_text(name, detail)}")
    return "\n".join(lines)


def time_histogram(ax: Any, ms: np.ndarray) -> None:
    """Device times (ms) on a matplotlib axis: a deterministic time base gives a handful of exact
    values, one labelled bar each; otherwise a 30-bin histogram."""
    values, counts = np.unique(np.round(ms, 4), return_counts=True)
    if len(values) <= 12:
        ax.bar([f"{v:.3f}" for v in values], counts, color="tab:orange")
        ax.tick_params(axis="x", labelrotation=30)
    else:
        ax.hist(ms, bins=30, color="tab:orange")
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")


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
    names = r.class_names or [str(k) for k in range(len(cm))]
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("device class")
    ax.set_ylabel("label")
    ax.set_title(f"{r.board} {r.variant}: MCC {r.labels.mcc:.3f}")
    fig.tight_layout()
    cm_png = f"{stem}_confusion.png"
    fig.savefig(out / cm_png, metadata={"Software": None})
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.8, 3), dpi=100)
    time_histogram(ax, np.array(r.device_ms))
    ax.set_xlabel(f"device time per inference (ms at {BOARDS[r.board].clock_hz / 1e6:g} MHz)")
    ax.set_ylabel("windows")
    ax.set_title(f"{r.board} {r.variant}: p50 {r.device_us.p50 / 1e3:.3f} ms, max {r.device_us.max / 1e3:.3f} ms",
                 fontsize=10)
    fig.tight_layout()
    lat_png = f"{stem}_latency.png"
    fig.savefig(out / lat_png, metadata={"Software": None})
    plt.close(fig)
    return cm_png, lat_png


def _table(head: list[str], rows: list[list[object]], caption: str = "") -> str:
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{cap}<tr>{th}</tr>{body}</table>"


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _image_text(r: DeviceRun) -> str:
    if r.image is None:
        return "image: the firmware already on the board (not flashed by this run)"
    return f"image {r.image} (sha256 {r.image_sha256})"


def _counts_text(counts: object) -> str:
    """``{"timeout": 3, "crc": 1}`` -> ``timeout 3, crc 1``; nothing -> ``none``."""
    if not isinstance(counts, dict) or not counts:
        return "none"
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _failures_html(r: DeviceRun) -> str:
    out = ""
    if r.aborted:
        out += f"<p class=bad>stream stopped: {html.escape(r.aborted)}</p>"
    if r.failures:
        rows: list[list[object]] = [[f["index"], f["reason"], len(list(f.get("retries") or []))]  # type: ignore[call-overload]
                                    for f in r.failures[:50]]
        out += _table(["window", "reason", "resends"], rows,
                      f"windows failed (no valid reply): {len(r.failures)}" + (" (first 50; all in report.json)"
                                                                     if len(r.failures) > 50 else ""))
    if r.mismatches:
        rows = [[m["window"], m["got_class"], m["want_class"], m["got"], m["want"]] for m in r.mismatches]
        out += _table(["window", "device class", "reference class", "device scores", "reference scores"], rows,
                      f"mismatched windows (an intact reply that differs from the reference): {r.n_mismatches}"
                      + (" (first 50)" if r.n_mismatches > 50 else ""))
    return out


def _case_html(r: DeviceRun, out: Path, base: DeviceRun | None) -> str:
    verdict = "PASS" if r.passed else "FAIL"
    head = f"<section id='{r.board}-{r.variant}'><h2>{r.board} / {r.variant} on {r.target}: {verdict}</h2>"
    checks = "".join(f"<li class={'ok' if ok else 'bad'}>{html.escape(check_text(n, d))}</li>" for n, ok, d in r.checks)
    if r.n_replied == 0:
        return head + f"<ul>{checks}</ul>{_failures_html(r)}</section>"
    cm_png, lat_png = _plots(r, out)
    summary = (f"<p>firmware {html.escape(str(r.info.get('build_id')))} on {html.escape(str(r.info.get('board')))}, "
               f"model hash {r.info.get('model_hash')}; {html.escape(_image_text(r))}; "
               f"{r.n_verified}/{r.n} windows verified, {r.n_mismatches} mismatched, "
               f"{len(r.failures)} failed; {html.escape(_vs(r))}; device time "
               f"{html.escape(r.time_unit)}; energy {html.escape(r.energy_basis)}; stack used "
               f"{r.info.get('stack_used')} B; host wall time {r.wall_s:.1f} s</p>")
    pc = _table(["class", "support", "recall", "precision"],
                [[c["class"], c["support"], c["recall"], c["precision"]] for c in r.per_class()], "per class")
    pa = _table(["animal", "windows", "device accuracy", "reference accuracy"],
                [[cow, v["windows"], v["accuracy"], v["reference_accuracy"]] for cow, v in r.per_animal.items()],
                "per animal")
    link = _table(["resends", "bad frames", "stale frames", "resend reasons", "faults injected"],
                  [[r.link.get("retries"), r.link.get("bad_frames"), r.link.get("stale_frames"),
                    _counts_text(r.link.get("retry_reasons")), r.link.get("faults_injected", "none")]], "link")
    logs = (f"<details><summary>device log ({len(r.device_logs)} lines)</summary><pre>"
            f"{html.escape(chr(10).join(r.device_logs))}</pre></details>")
    delta = _delta_html(r, base) if base is not None else ""
    return (head + summary + f"<ul>{checks}</ul>" + delta + "<div class=row>" + pc + pa + "</div>" + link
            + _failures_html(r) + f"<img src='{cm_png}' alt='confusion matrix'><img src='{lat_png}' "
            "alt='device time'>" + logs + "</section>")


def _delta_rows(r: DeviceRun, b: DeviceRun) -> list[list[object]]:
    rows: list[list[object]] = [
        ["accuracy", b.labels.accuracy, r.labels.accuracy, r.labels.accuracy - b.labels.accuracy],
        ["MCC", b.labels.mcc, r.labels.mcc, r.labels.mcc - b.labels.mcc],
    ]
    for c, cb in zip(r.per_class(), b.per_class(), strict=True):
        if c["recall"] is not None and cb["recall"] is not None:
            rows.append([f"recall {c['class']}", cb["recall"], c["recall"],
                         float(c["recall"]) - float(cb["recall"])])  # type: ignore[arg-type]
    rows.append(["latency p50 ms", b.device_us.p50 / 1e3, r.device_us.p50 / 1e3,
                 (r.device_us.p50 - b.device_us.p50) / 1e3])
    rows.append(["energy uJ", b.energy_uj_mean, r.energy_uj_mean, r.energy_uj_mean - b.energy_uj_mean])
    for name, x, y in (("flash B", b.flash_bytes, r.flash_bytes), ("static RAM B", b.ram_bytes, r.ram_bytes)):
        if x is not None and y is not None:
            rows.append([name, x, y, y - x])
    return rows


def _model_changed(r: DeviceRun, b: DeviceRun) -> str:
    """'' when both runs ran the same model, else a sentence saying that they did not."""
    h, hb = r.info.get("model_hash"), b.info.get("model_hash")
    return "" if h == hb else f"the baseline ran another model (hash {hb}, this run {h}): deltas compare two models"


def _delta_html(r: DeviceRun, b: DeviceRun) -> str:
    note = _model_changed(r, b)
    return ((f"<p class=bad>{html.escape(note)}</p>" if note else "")
            + _table(["measure", "baseline", "this run", "delta"], _delta_rows(r, b), "against the baseline"))


def baseline_text(runs: list[DeviceRun], baseline: dict[tuple[str, str], DeviceRun]) -> str:
    """Deltas against a baseline run, for the terminal."""
    lines = []
    for r in runs:
        b = baseline.get((r.board, r.variant))
        if b is None or r.n_replied == 0 or b.n_replied == 0:
            lines.append(f"{r.board}/{r.variant}: no baseline to compare")
            continue
        parts = [f"{m} {d:+.4g}" for m, _, _, d in _delta_rows(r, b)]  # type: ignore[misc]
        note = _model_changed(r, b)
        lines.append(f"{r.board}/{r.variant} vs baseline: " + ", ".join(parts) + (f" ({note})" if note else ""))
    return "\n".join(lines)


def load_baseline(folder: Path) -> dict[tuple[str, str], DeviceRun]:
    """The runs of an earlier report folder (its report.json), by (board, variant)."""
    path = Path(folder) / "report.json"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: baseline report not found (option --baseline)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("runs"), list):
        raise ValueError(f'{path}: not a report: no "runs" list')
    out = {}
    for i, d in enumerate(raw["runs"]):
        try:
            run = DeviceRun.from_dict(d)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: runs[{i}]: not a run record of this harness ({exc})") from None
        out[(run.board, run.variant)] = run
    return out


_CSS = ("body{font-family:sans-serif;max-width:78em;margin:2em auto;color:#222}.ok{color:#060}"
        ".bad{color:#a00;font-weight:bold}img{margin:.5em;vertical-align:top}table{border-collapse:collapse;"
        "margin:.5em 1em .5em 0;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        "caption{text-align:left;font-weight:bold}.row{display:flex;flex-wrap:wrap}section{border-top:2px solid "
        "#888;margin-top:1.5em}pre{background:#f6f6f6;padding:.5em;overflow-x:auto}")


def provenance_html(provenance: dict[str, object]) -> str:
    """The provenance as nested lists (no Python dict text)."""

    def item(k: str, v: object) -> str:
        if isinstance(v, dict):
            inner = "".join(item(str(a), b) for a, b in v.items())
            return f"<li>{html.escape(k)}<ul>{inner}</ul></li>"
        return f"<li>{html.escape(k)}: <code>{html.escape(_fmt(v))}</code></li>"

    return "<ul id=provenance>" + "".join(item(k, v) for k, v in provenance.items()) + "</ul>"


def write_report(runs: list[DeviceRun], out: Path, provenance: dict[str, object],
                 baseline: dict[tuple[str, str], DeviceRun] | None = None) -> Path:
    """Write report.json, index.html and the plots into ``out`` (its own folder for this run)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(
        {"provenance": provenance, "runs": [r.as_dict() for r in runs]}, indent=1, default=str) + "\n")
    sections = "".join(_case_html(r, out, (baseline or {}).get((r.board, r.variant))) for r in runs)
    verdict = "PASS" if runs and all(r.passed for r in runs) else "FAIL"
    page = (f"<!doctype html><meta charset=utf-8><title>cattle-hil report: {verdict}</title><style>{_CSS}</style>"
            f"<h1>cattle-hil report: <span class={'ok' if verdict == 'PASS' else 'bad'}>{verdict}</span></h1>"
            f"<h2>Provenance</h2>{provenance_html(provenance)}<h2>Summary</h2>"
            f"<pre>{html.escape(summary_table(runs))}</pre>{sections}")
    (out / "index.html").write_text(page)
    return out


RUN_JSON_SCHEMA = "hil-run/1"
"""The schema of `hil run --json` and of every report folder's ``summary.json`` (see
:func:`run_summary`); a change of its fields changes the number."""
RUN_JSON_FIELDS = {
    "schema": f"str: {RUN_JSON_SCHEMA!r}",
    "date_utc": "str: when the run started (ISO 8601, UTC)",
    "report": "str: the report folder",
    "passed": "bool: every check of every case passed",
    "cases": "list: per board and variant: board, variant, target, passed, model_hash and build_id (from the "
             "device's hello), reference, failed_checks (name and detail of each failed check), and measured (the "
             "case's figures with their units in the names: windows, windows_verified, windows_mismatched, "
             "windows_failed, accuracy, macro_f1, mcc, latency_p50_ms, energy_uj, flash_bytes, ram_bytes, "
             "recall_<class>, ...)",
}
"""The top-level fields of a run summary and their meaning (README table)."""


def run_summary(runs: list[DeviceRun], report_dir: Path, date_utc: str) -> dict[str, object]:
    """What a CI dashboard charts across runs: schema :data:`RUN_JSON_SCHEMA`, fields :data:`RUN_JSON_FIELDS`."""
    return {
        "schema": RUN_JSON_SCHEMA, "date_utc": date_utc, "report": str(report_dir),
        "passed": bool(runs) and all(r.passed for r in runs),
        "cases": [{"board": r.board, "variant": r.variant, "target": r.target, "passed": r.passed,
                   "model_hash": r.info.get("model_hash"), "build_id": r.info.get("build_id"),
                   "reference": r.reference,
                   "failed_checks": [{"name": n, "detail": d} for n, ok, d in r.checks if not ok],
                   "measured": r.measured()} for r in runs],
    }


def history(root: Path, last: int = 10) -> list[dict[str, object]]:
    """The run summaries (``summary.json``) of the report folders under ``root``, newest last, at
    most ``last`` of them. A folder without one (an older harness, an interrupted run) is left out."""
    found = []
    for p in sorted(Path(root).glob("*/summary.json")):
        if p.parent.is_symlink():
            continue
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(d, dict) and d.get("schema") == RUN_JSON_SCHEMA:
            found.append(d)
    found.sort(key=lambda d: str(d.get("date_utc")))
    return found[-last:] if last > 0 else found


def format_history(runs: list[dict[str, object]]) -> str:
    """One line per case of every run: date, case, verdict, accuracy, MCC, latency, energy, model."""
    head = (f"{'date (UTC)':<21}{'board':<10}{'variant':<9}{'target':<7}{'result':<7}{'verified':>10}{'acc':>7}"
            f"{'MCC':>7}{'p50 ms':>9}{'uJ/inf':>9}  model hash")
    lines = [head, "-" * len(head)]
    for run in runs:
        for c in run["cases"]:  # type: ignore[attr-defined]
            m = c["measured"]
            verified = f"{m['windows_verified']}/{m['windows']}"
            lines.append(f"{str(run['date_utc'])[:19]:<21}{c['board']:<10}{c['variant']:<9}{c['target']:<7}"
                         f"{'PASS' if c['passed'] else 'FAIL':<7}{verified:>10}"
                         f"{m['accuracy']:>7.3f}{m['mcc']:>7.3f}{m['latency_p50_ms']:>9.2f}{m['energy_uj']:>9.1f}  "
                         f"{c['model_hash']}")
    if not runs:
        lines.append("(no report folder with a summary.json)")
    return "\n".join(lines)
