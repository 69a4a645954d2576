"""DD-Ranking's scores (NUS-HPC-AI-Lab/DD-Ranking ddranking/metrics/soft_label.py, compute_metrics:
hlr = full_hard - syn_hard, ior = syn_soft - random_soft, alpha = 0.5 ior - 0.5 hlr,
lrs = (exp(alpha) - exp(-1)) / (exp(1) - exp(-1))) from a hand-made accuracy table."""

import math

from vlcp import contract
from vlcp.aggregate import summarize
from vlcp.scores import add_scores, label_robust_score


def row(protocol, method, ipc, top1, seed=0, eval_seed=0, model="convnet6"):
    return {"protocol": protocol, "method": method, "ipc": ipc, "seed": seed, "model": model, "eval_seed": eval_seed,
            "top1_best": top1, "top1_last": top1 - 1}


def test_label_robust_score_by_hand():
    # a = 0.5 * 0.2 - 0.5 * 0.3 = -0.05
    expected = (math.exp(-0.05) - math.exp(-1)) / (math.exp(1) - math.exp(-1))
    assert math.isclose(label_robust_score(0.2, 0.3), expected, rel_tol=1e-12)
    assert label_robust_score(1.0, -1.0) == 1.0 and math.isclose(label_robust_score(-1.0, 1.0), 0.0, abs_tol=1e-12)


def test_scores_from_a_hand_made_accuracy_table(tmp_path):
    rows = [
        row("minimax", "vlcp-prototype", "10", 60.0), row("minimax", "vlcp-prototype", "10", 64.0, eval_seed=1),
        row("minimax", "random", "10", 50.0), row("minimax", "full", "all", 90.0),
        row("rded", "vlcp-prototype", "10", 70.0), row("rded", "random", "10", 66.0),
        row("rded", "vlcp-prototype", "20", 75.0),  # no random at IPC 20 under rded, no hard-label run at 20
    ]
    contract.write_accuracy(tmp_path / "a.csv", rows)
    scored, missing = add_scores(summarize(contract.read_accuracy(tmp_path / "a.csv")))
    best = scored[scored.metric == "top1_best"].set_index(["protocol", "method", "ipc"])
    # hard labels: IOR = 0.62 - 0.50, HLR = 0.90 - 0.62
    hard = best.loc[("minimax", "vlcp-prototype", "10")]
    assert (hard.ior, hard.hlr) == (0.12, 0.28)
    assert hard.lrs == round((math.exp(-0.08) - math.exp(-1)) / (math.e - math.exp(-1)), 4)
    # soft labels: IOR = 0.70 - 0.66 under rded; HLR from the hard-label runs of the same set
    soft = best.loc[("rded", "vlcp-prototype", "10")]
    assert (soft.ior, soft.hlr) == (0.04, 0.28)
    assert 0 <= soft.lrs <= 1 and soft.lrs == round(label_robust_score(0.04, 0.28), 4)
    # random against itself: IOR 0
    assert best.loc[("minimax", "random", "10")].ior == 0.0
    # what cannot be computed is empty, and the run to add is named
    alone = best.loc[("rded", "vlcp-prototype", "20")]
    assert math.isnan(alone.ior) and math.isnan(alone.hlr) and math.isnan(alone.lrs)
    assert "IOR: method 'random' at IPC 20 under protocol rded (convnet6)" in missing
    assert "HLR: vlcp-prototype at IPC 20 under protocol minimax (convnet6)" in missing
    assert all(math.isnan(v) for v in best.loc[("minimax", "full", "all")][["ior", "hlr", "lrs"]])


def test_rows_without_a_protocol_column_are_hard_label_rows(tmp_path):
    (tmp_path / "old.csv").write_text("method,ipc,seed,model,eval_seed,top1_best,top1_last\nrandom,10,0,convnet6,0,50.0,49.0\n")
    assert list(contract.read_accuracy(tmp_path / "old.csv")["protocol"]) == ["minimax"]
