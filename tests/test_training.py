"""Models and the KD pipeline (smoke: the pipeline, not the figures)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, needs_shared_data

from harness.training.models import GruStudent, ResNetTeacher, count_params
from harness.training.train import FitConfig, fit, predict_logits


def test_model_sizes_and_macs() -> None:
    s = GruStudent(256, 64, 4)
    assert count_params(s) == 3 * 64 + 64 + 2 * 3 * 64 * 64 + 2 * 3 * 64 + 64 * 64 + 64 + 64 * 4 + 4
    assert 6.0e6 < s.macs() < 6.5e6  # the seed paper's ~6.4 M multiplications per 256-sample window
    t = ResNetTeacher(50, 4)
    assert [b.body[0].out_channels for b in t.blocks] == [64, 128, 128]
    assert [m.kernel_size[0] for m in t.blocks[0].body if isinstance(m, torch.nn.Conv1d)] == [8, 5, 3]


def test_normalisation_mean_is_integer_counts() -> None:
    s = GruStudent(50, 16, 4)
    s.norm.fit(torch.tensor([[[1.0, 2.0, 3.0], [2.0, 3.0, 5.0]]]))
    assert s.norm.mean.tolist() == [2.0, 2.0, 4.0]  # rounded: the device subtracts integers


def test_kd_fit_is_deterministic_and_learns_a_separable_toy_problem() -> None:
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 64)
    x = (rng.normal(0, 300, (256, 50, 3)) + (y[:, None, None] - 1.5) * 2000).astype(np.int16)
    soft = np.eye(4)[y] * 5.0
    cfg = FitConfig(epochs=6, patience=6, samples_per_epoch=512, alpha=0.5, seed=3)
    accs = []
    for _ in range(2):
        torch.manual_seed(0)
        m = GruStudent(50, 16, 4)
        fit(m, x, y, x, y, cfg, soft_logits=soft)
        accs.append((predict_logits(m, x).argmax(1) == y).mean())
    assert accs[0] == accs[1] and accs[0] > 0.7  # chance is 0.25
    with pytest.raises(ValueError, match="teacher logits"):
        fit(GruStudent(50, 16, 4), x, y, x, y, FitConfig(alpha=0.0))


def test_feature_matching_fits_deterministically_and_leaves_the_model_unchanged_in_shape() -> None:
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(4), 48)
    x = (rng.normal(0, 300, (192, 50, 3)) + (y[:, None, None] - 1.5) * 2000).astype(np.int16)
    teacher = ResNetTeacher(50, 4, filters=(8, 8, 8))
    with torch.no_grad():
        feats = teacher.features(torch.from_numpy(x.astype(np.float32))).numpy()
    assert feats.shape == (192, 8)
    cfg = FitConfig(epochs=6, patience=6, samples_per_epoch=512, alpha=0.5, seed=3)
    outs = []
    for _ in range(2):
        torch.manual_seed(0)
        m = GruStudent(50, 16, 4)
        fit(m, x, y, x, y, cfg, soft_logits=np.eye(4)[y] * 5.0, feat_target=feats, feat_weight=1.0)
        assert set(m.state_dict()) == set(GruStudent(50, 16, 4).state_dict())  # the map is not part of it
        outs.append(predict_logits(m, x))
    assert np.array_equal(outs[0], outs[1]) and (outs[0].argmax(1) == y).mean() > 0.7
    xt = torch.from_numpy(x[:5].astype(np.float32))
    with torch.no_grad():
        assert torch.equal(m(xt), m.head(m.features(xt)))
        assert torch.equal(teacher(xt), teacher.fc(teacher.features(xt)))


@needs_shared_data
def test_kd_bench_quick_runs_the_whole_pipeline() -> None:
    from harness.training.bench import BenchConfig, run_kd_bench

    lines: list[str] = []
    res = run_kd_bench(SHARED_DATA, BenchConfig.quick(), None, log=lines.append)
    names = [r["model"] for r in res["summary"]]  # type: ignore[index]
    assert names == ["teacher resnet", "gru-16 hard", "gru-16 kd"]
    assert "excluded 17 faulty bouts" in lines[0]


def test_the_paired_bench_statistics_are_paired_and_the_interval_covers_the_mean() -> None:
    from harness.training.paired import PairedConfig, bootstrap_interval, summarise

    cm = [[3, 1, 0, 0], [0, 2, 0, 0], [0, 0, 4, 1], [1, 0, 0, 5]]
    rows = [{"fold": f, "seed": s, "mcc": {"hard": 0.5 + 0.1 * f, "hard'": 0.5 + 0.1 * f + 0.01 * (s - 0.5),
                                          "kd": 0.53 + 0.1 * f},
             "confusion": {a: cm for a in ("hard", "hard'", "kd")}} for f in range(6) for s in (0, 1)]
    out = summarise(rows, ["hard", "hard'", "kd"], PairedConfig(bootstrap=500).bootstrap)  # type: ignore[arg-type]
    hard = next(a for a in out["arms"] if a["arm"] == "hard")  # type: ignore[attr-defined]
    # pooled over 12 runs of the same confusion matrix: recall of walking 2/2, of resting 4/5
    assert hard["pooled_recall"]["walking"] == pytest.approx(1.0)
    assert hard["pooled_recall"]["resting"] == pytest.approx(0.8)
    kd = next(c for c in out["comparisons"] if c["comparison"] == "kd - hard")  # type: ignore[attr-defined]
    # every pair differs by exactly +0.03: paired, the spread between folds (0.1 per fold) cancels out
    assert kd["mean"] == pytest.approx(0.03) and kd["paired_se"] == pytest.approx(0.0, abs=1e-12)
    assert kd["ci95_over_cows"][0] == pytest.approx(0.03) and kd["ci95_over_cows"][1] == pytest.approx(0.03)
    noise = next(c for c in out["comparisons"] if c["comparison"] == "hard' - hard")  # type: ignore[attr-defined]
    assert noise["mean"] == pytest.approx(0.0) and noise["paired_se"] > 0
    lo, hi = bootstrap_interval([0.1, -0.2, 0.05, 0.3, 0.0], 2000)
    assert lo < float(np.mean([0.1, -0.2, 0.05, 0.3, 0.0])) < hi


def test_context_windows_are_centred_shifted_at_bout_ends_and_mirrored_in_short_bouts() -> None:
    from harness.data.recordings import Bout
    from harness.data.windows import context_windows, make_windows

    def bout(path: str, n: int) -> Bout:
        c = np.stack([np.arange(n), np.arange(n) + 1000, np.zeros(n)], axis=1).astype(np.int16)
        return Bout(path=path, cow="1", label=0, behaviour="Grazing", counts=c, median_g=1.0)

    long, short = bout("a.csv", 400), bout("b.csv", 60)
    ws, _ = make_windows([long, short], 50, 50)
    ctx = context_windows([long, short], ws, 200)
    assert ctx.shape == (len(ws), 200, 3)
    starts = ws.start.tolist()
    # a window in the middle of the long bout: centred (window 150..199 -> context 75..274)
    mid = starts.index(150)
    assert ctx[mid, 0, 0] == 75 and ctx[mid, -1, 0] == 274
    # the first window: the span cannot start before the bout, so it is shifted to 0..199
    assert ctx[0, 0, 0] == 0 and ctx[0, -1, 0] == 199
    # the last window of the long bout: shifted to end at the bout's end
    assert ctx[starts.index(350), -1, 0] == 399
    # the 60-sample bout: mirrored at its ends, its own samples in the middle, y column kept
    sh = ctx[len(ws) - 1]
    assert sh[70:130, 0].tolist() == list(range(60)) and sh[69, 0] == 0 and sh[130, 0] == 59
    assert (sh[:, 1] - sh[:, 0]).tolist() == [1000] * 200
    with pytest.raises(KeyError, match=r"b\.csv"):
        context_windows([long], ws, 200)


def test_merging_paired_parts_refuses_a_repeated_run_or_another_configuration() -> None:
    from harness.training.paired import merge_paired, summarise

    cm = [[3, 1, 0, 0], [0, 2, 0, 0], [0, 0, 4, 1], [1, 0, 0, 5]]

    def part(folds: list[int], alpha: float = 0.5) -> dict[str, object]:
        rows = [{"fold": f, "seed": 0, "mcc": {"hard": 0.4 + f / 10, "hard'": 0.4, "kd": 0.45 + f / 10},
                 "confusion": {a: cm for a in ("hard", "hard'", "kd")}} for f in folds]
        out = summarise(rows, ["hard", "hard'", "kd"], 200)  # type: ignore[arg-type]
        out.update(config={"kd_alpha": alpha, "folds": folds, "bootstrap": 200}, runs=rows, seconds=10.0)
        return out

    merged = merge_paired([part([0, 1]), part([2, 3])])
    kd = next(c for c in merged["comparisons"] if c["comparison"] == "kd - hard")  # type: ignore[attr-defined]
    assert kd["n_pairs"] == 4 and kd["mean"] == pytest.approx(0.05)
    assert merged["config"]["folds"] == [0, 1, 2, 3] and merged["seconds"] == 20.0  # type: ignore[index]
    with pytest.raises(ValueError, match="fold 1 seed 0 is in more than one part"):
        merge_paired([part([0, 1]), part([1, 2])])
    with pytest.raises(ValueError, match="part 2: configuration differs from part 1 in kd_alpha"):
        merge_paired([part([0]), part([1], alpha=0.2)])


@needs_shared_data
def test_the_paired_bench_gives_the_same_runs_in_one_process_or_two() -> None:
    from dataclasses import replace

    from harness.training.paired import PairedConfig, run_paired_bench

    tiny = FitConfig(epochs=1, patience=1, samples_per_epoch=256)
    cfg = replace(PairedConfig.quick(), teacher=tiny, student=tiny, bootstrap=100)
    one = run_paired_bench(SHARED_DATA, cfg, None, log=lambda m: None)
    two = run_paired_bench(SHARED_DATA, replace(cfg, jobs=2), None, log=lambda m: None)
    assert [r["mcc"] for r in one["runs"]] == [r["mcc"] for r in two["runs"]]  # type: ignore[attr-defined]
    assert one["comparisons"] == two["comparisons"] and len(two["runs"]) == 2  # type: ignore[arg-type]


def test_the_paired_bench_summary_names_the_models_own_classes_and_merge_refuses_mixed_classes() -> None:
    from harness.training.paired import format_paired, merge_paired, summarise

    five = ("travelling", "resting", "foraging", "grooming", "other")
    cm = np.diag([4, 3, 2, 1, 0]).tolist()
    cm[4][0] = 2  # "other" never right: recall 0, the rest 1.0
    rows = [{"fold": f, "seed": 0, "mcc": {"hard": 0.3, "hard'": 0.31, "kd": 0.33},
             "confusion": {a: cm for a in ("hard", "hard'", "kd")}} for f in (0, 1)]
    out = summarise(rows, ["hard", "hard'", "kd"], 100, five)  # type: ignore[arg-type]
    assert out["class_names"] == list(five)
    rec = out["arms"][0]["pooled_recall"]  # type: ignore[index]
    assert list(rec) == list(five) and rec["other"] == 0.0 and rec["travelling"] == 1.0
    assert "pooled recall (travelling, resting, foraging, grooming, other)" in format_paired(out)
    out.update(config={"kd_alpha": 0.5, "folds": [0, 1], "bootstrap": 100}, runs=rows, seconds=1.0)
    four = summarise(rows, ["hard", "hard'", "kd"], 100, ("a", "b", "c", "d", "e"))  # type: ignore[arg-type]
    four.update(config={"kd_alpha": 0.5, "folds": [2], "bootstrap": 100},
                runs=[{**rows[0], "fold": 2}], seconds=1.0)
    with pytest.raises(ValueError, match="the parts have different classes"):
        merge_paired([out, four])
