"""`bench compare`: two encoders on the same samples, cell by cell: the difference with its 95%
paired-bootstrap interval and a p-value (McNemar's exact test for accuracies, the paired
sign-flip test for CIDEr and VQA accuracy). Refuses cells whose sample sets differ (a paired
test needs the same samples). A task with a cell aggregate (POPE's mean F1 over splits) is
compared on that aggregate: a paired bootstrap drawn within each split, and the paired
randomisation test that swaps each sample's two scores (bench.report.statistics.paired_statistic).

Both encoders are scored on the same resamples; for CIDEr every resample is re-scored with its
own idf (bench.report.intervals), so the references are read from the task's data."""
from __future__ import annotations

from pathlib import Path

from bench.report.intervals import CellIntervals
from bench.report.leaderboard import ACCURACY, cell_samples, load_samples
from bench.report.statistics import paired, paired_statistic, resample_counts
from benchutil.errors import BenchError, require_known


def compare_command(results: list[Path], encoders: str, task: str | None, eps: str | None,
                    data_root: str | None = None) -> None:
    names = [e.strip() for e in encoders.split(",") if e.strip()]
    if len(names) != 2 or names[0] == names[1]:
        raise BenchError(f"--encoders needs two different names, e.g. --encoders fare-4,sim-clip-4; got {encoders!r}")
    samples = load_samples(results)
    require_known("encoder", names, set(samples["encoder"]),
                  f" (the encoders with runs under {' '.join(map(str, results))})")
    cells, _ = cell_samples(samples)
    metric = samples.groupby("task")["metric"].first()
    a_name, b_name = names
    keys = sorted({(label, t) for label, t, enc in cells if enc == a_name} & {(label, t) for label, t, enc in cells
                                                                               if enc == b_name})
    # --eps names a threat ("Linf 4/255") or its eps ("4/255": every threat at that radius)
    keys = [(label, t) for label, t in keys
            if (task is None or t == task) and (eps is None or label == eps or eps in label.split(" ")[1:2])]
    if not keys:
        raise BenchError(f"{a_name} and {b_name} share no cell{'' if task is None else ' on ' + task}"
                         f"{'' if eps is None else ' at ' + eps}; run both on the same task and eps")
    for label, t in keys:  # every cell is checked before any line is printed
        a, b = cells[(label, t, a_name)], cells[(label, t, b_name)]
        if set(a.index) != set(b.index):
            raise BenchError(f"{a_name} and {b_name} were run on different samples of {t} at {label}; a paired "
                             "comparison needs the same --n-samples and --seed")
        cells[(label, t, b_name)] = b[a.index]  # the same order: a resample draws the same samples for both
    intervals = CellIntervals(samples, cells, metric.to_dict(), ACCURACY, data_root)  # CIDEr's references load once
    for label, t in keys:
        a, b = cells[(label, t, a_name)], cells[(label, t, b_name)]
        binary = metric[t] == ACCURACY
        if intervals.values.aggregate(t) is not None:  # compared on the aggregate itself (POPE's F1)
            cell_a = (label, t, a_name)
            r = paired_statistic(a.values, b.values, lambda scores, counts, c=cell_a:
                                 intervals.values.resampled(c, counts, scores), intervals.values.counts(cell_a))
            test = f", swap p = {r.p_value:.3g}"
        else:
            boot = None
            if metric[t] == "CIDEr":
                counts = resample_counts(len(a))
                boot = (intervals.resampled_means((label, t, a_name), counts)
                        - intervals.resampled_means((label, t, b_name), counts))
            r = paired(a.values, b.values, binary, difference_of_resamples=boot)
            test = (f", McNemar p = {r.p_value:.3g} ({r.only_a} right under {a_name} only, {r.only_b} under "
                    f"{b_name} only)" if binary else f", sign-flip p = {r.p_value:.3g}")
        print(f"{t} {label} ({metric[t]}, n = {r.n}): {a_name} {r.mean_a:.1f} vs {b_name} {r.mean_b:.1f}, "
              f"difference {r.difference:+.1f} [{r.low:+.1f}, {r.high:+.1f}]{test}")
