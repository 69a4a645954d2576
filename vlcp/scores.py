"""DD-Ranking's scores of a distilled set, from the accuracy summary (NUS-HPC-AI-Lab/DD-Ranking,
``ddranking/metrics/soft_label.py``, ``compute_metrics``; line numbers below at commit b8b0966):

- IOR, improvement over random: Acc(set) - Acc(random real images, same IPC, same protocol);
- HLR, hard-label recovery: Acc(whole real train set, hard labels) - Acc(set, hard labels);
- LRS, label-robust score: (e^a - e^-1) / (e - e^-1) with a = 0.5 IOR - 0.5 HLR.

Accuracies are fractions, as DD-Ranking's documentation defines the scores: ``doc/introduction.md``
lines 58-65 normalise LRS to [0, 1], which needs a in [-1, 1]. Its code does not: ``soft_label.py``
lines 561-564 (and ``ddranking/metrics/hard_label.py`` lines 380-383) take the accuracies in percent
(``ddranking/utils/meter.py`` line 168), so a is tens of points from 0 and LRS sits near
-e^-1 / (e - e^-1) = -0.157 for every set whose HLR exceeds its IOR by a few points, almost all of them.
We follow the documentation.

DD-Ranking computes the three per evaluation run and averages; here they come from the mean accuracies
of the summary (the distilled set's seeds and random's are not paired), so an LRS is that of the means.
Hard labels are the Minimax protocol's. DD-Ranking trains the hard- and the soft-label accuracies on
one network (``build_model(self.model_name)``, ``soft_label.py`` lines 215 and 245); a soft-label row
here takes its HLR from the Minimax protocol's network of that name, another network than its own
(column ``hlr_comparable``). Acc(whole real train set) is the run's own 'full' row, else the config's
``evaluate.full_reference``, as DD-Ranking reads a cached accuracy when it does not train on the whole
set (``soft_label.py`` lines 536-540, ``ddranking/utils/train_and_eval.py`` lines 15-18); column
``full_source``.
"""

import math

HARD_LABEL_PROTOCOL = "minimax"
SCORE_COLUMNS = ("ior", "hlr", "lrs")
RUN = "run"  # full_source of an Acc(whole real train set) from the summary's own 'full' row
ROW_COLUMNS = (*SCORE_COLUMNS, "hlr_comparable", "full_source")


def label_robust_score(ior, hlr, weight=0.5):
    """DD-Ranking's LRS from IOR and HLR (fractions): (e^a - e^-1) / (e - e^-1), a = w IOR - (1 - w) HLR."""
    a = weight * ior - (1 - weight) * hlr
    return (math.exp(a) - math.exp(-1)) / (math.e - math.exp(-1))


def full_accuracy(means, metric, model, full_reference):
    """Acc(whole real train set, hard labels) of ``model`` (a fraction) and its source: the summary's 'full'
    row ('run'), else ``full_reference[model]``'s top1 and source, else (None, None)."""
    own = means.get((metric, HARD_LABEL_PROTOCOL, "full", "all", model))
    if own is not None:
        return own, RUN
    if model in full_reference:
        return full_reference[model]["top1"] / 100, full_reference[model]["source"]
    return None, None


def row_scores(r, means, full_reference, missing):
    """The ROW_COLUMNS of summary row ``r``; empty (NaN, None) where a run they need is missing, which goes
    to ``missing``, and for 'full'."""
    ior = hlr = lrs = math.nan
    comparable = source = None
    if r.method == "full":
        return dict(zip(ROW_COLUMNS, (ior, hlr, lrs, comparable, source)))
    accuracy = r.mean / 100
    random_set = means.get((r.metric, r.protocol, "random", r.ipc, r.model))
    hard = means.get((r.metric, HARD_LABEL_PROTOCOL, r.method, r.ipc, r.model))
    full, full_source = full_accuracy(means, r.metric, r.model, full_reference)
    if random_set is None:
        missing.add(f"IOR: method 'random' at IPC {r.ipc} under protocol {r.protocol} ({r.model})")
    else:
        ior = accuracy - random_set
    if full is None:
        missing.add(
            f"HLR: method 'full' under protocol {HARD_LABEL_PROTOCOL} ({r.model}), or evaluate.full_reference.{r.model}"
        )
    elif hard is None:
        missing.add(f"HLR: {r.method} at IPC {r.ipc} under protocol {HARD_LABEL_PROTOCOL} ({r.model})")
    else:
        hlr = full - hard
        # the hard-label accuracies are those of this row's own network only under the hard-label protocol
        comparable, source = r.protocol == HARD_LABEL_PROTOCOL, full_source
    if not (math.isnan(ior) or math.isnan(hlr)):
        lrs = label_robust_score(ior, hlr)
    return dict(zip(ROW_COLUMNS, (round(ior, 4), round(hlr, 4), round(lrs, 4), comparable, source)))


def add_scores(summary, full_reference=None):
    """``summary`` (vlcp.aggregate.summarize) with the ROW_COLUMNS, and the sorted list of the runs to add.
    ``full_reference`` (config evaluate.full_reference: model -> {top1, source}) stands in for a model's
    missing 'full' run."""
    means = {(r.metric, r.protocol, r.method, r.ipc, r.model): r.mean / 100 for r in summary.itertuples()}
    missing = set()
    rows = [row_scores(r, means, full_reference or {}, missing) for r in summary.itertuples()]
    scored = summary.copy()
    for name in ROW_COLUMNS:
        scored[name] = [row[name] for row in rows]
    return scored, sorted(missing)
