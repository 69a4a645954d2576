"""DD-Ranking's scores of a distilled set, from the accuracy summary (NUS-HPC-AI-Lab/DD-Ranking,
``ddranking/metrics/soft_label.py``, ``compute_metrics``):

- IOR, improvement over random: Acc(set) - Acc(random real images, same IPC, same protocol);
- HLR, hard-label recovery: Acc(whole real train set, hard labels) - Acc(set, hard labels);
- LRS, label-robust score: (e^a - e^-1) / (e - e^-1) with a = 0.5 IOR - 0.5 HLR,

accuracies as fractions, so that a lies in [-1, 1] and LRS in [0, 1]. DD-Ranking computes the three per evaluation run and averages;
here they come from the mean accuracies of the summary (the distilled set's seeds and random's are not
paired), so an LRS is that of the means. Hard labels are the Minimax protocol's.
"""

import math

HARD_LABEL_PROTOCOL = "minimax"
SCORE_COLUMNS = ("ior", "hlr", "lrs")


def label_robust_score(ior, hlr, weight=0.5):
    """DD-Ranking's LRS from IOR and HLR (fractions): (e^a - e^-1) / (e - e^-1), a = w IOR - (1 - w) HLR."""
    a = weight * ior - (1 - weight) * hlr
    return (math.exp(a) - math.exp(-1)) / (math.e - math.exp(-1))


def add_scores(summary):
    """``summary`` (vlcp.aggregate.summarize) with columns ior, hlr and lrs on every row of a distilled set
    (empty where a run they need is missing, and for 'full'), and the sorted list of the runs to add."""
    means = {(r.metric, r.protocol, r.method, r.ipc, r.model): r.mean / 100 for r in summary.itertuples()}
    missing = set()
    scores = {name: [] for name in SCORE_COLUMNS}
    for r in summary.itertuples():
        ior = hlr = lrs = math.nan
        if r.method != "full":
            accuracy = r.mean / 100
            random_set = means.get((r.metric, r.protocol, "random", r.ipc, r.model))
            hard = means.get((r.metric, HARD_LABEL_PROTOCOL, r.method, r.ipc, r.model))
            full = means.get((r.metric, HARD_LABEL_PROTOCOL, "full", "all", r.model))
            if random_set is None:
                missing.add(f"IOR: method 'random' at IPC {r.ipc} under protocol {r.protocol} ({r.model})")
            else:
                ior = accuracy - random_set
            if full is None:
                missing.add(f"HLR: method 'full' under protocol {HARD_LABEL_PROTOCOL} ({r.model})")
            elif hard is None:
                missing.add(f"HLR: {r.method} at IPC {r.ipc} under protocol {HARD_LABEL_PROTOCOL} ({r.model})")
            else:
                hlr = full - hard
            if not (math.isnan(ior) or math.isnan(hlr)):
                lrs = label_robust_score(ior, hlr)
        for name, value in zip(SCORE_COLUMNS, (ior, hlr, lrs)):
            scores[name].append(round(value, 4))
    scored = summary.copy()
    for name in SCORE_COLUMNS:
        scored[name] = scores[name]
    return scored, sorted(missing)
