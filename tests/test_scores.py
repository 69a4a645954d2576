"""DD-Ranking's scores (NUS-HPC-AI-Lab/DD-Ranking ddranking/metrics/soft_label.py, compute_metrics:
hlr = full_hard - syn_hard, ior = syn_soft - random_soft, alpha = 0.5 ior - 0.5 hlr,
lrs = (exp(alpha) - exp(-1)) / (exp(1) - exp(-1))) from a hand-made accuracy table."""

import json
import math

import pandas as pd
import pytest
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO, deep_update, load_yaml
from vlcp import contract
from vlcp.aggregate import main, summarize, write_markdown
from vlcp.scores import add_scores, label_robust_score


def row(protocol, method, ipc, top1, seed=0, eval_seed=0, model="convnet6"):
    return {
        "protocol": protocol,
        "method": method,
        "ipc": ipc,
        "seed": seed,
        "model": model,
        "eval_seed": eval_seed,
        "top1_best": top1,
        "top1_last": top1 - 1,
    }


def test_label_robust_score_by_hand():
    # a = 0.5 * 0.2 - 0.5 * 0.3 = -0.05
    expected = (math.exp(-0.05) - math.exp(-1)) / (math.exp(1) - math.exp(-1))
    assert math.isclose(label_robust_score(0.2, 0.3), expected, rel_tol=1e-12)
    assert label_robust_score(1.0, -1.0) == 1.0 and math.isclose(label_robust_score(-1.0, 1.0), 0.0, abs_tol=1e-12)


def test_scores_from_a_hand_made_accuracy_table(tmp_path):
    rows = [
        row("minimax", "vlcp-prototype", "10", 60.0),
        row("minimax", "vlcp-prototype", "10", 64.0, eval_seed=1),
        row("minimax", "random", "10", 50.0),
        row("minimax", "full", "all", 90.0),
        row("rded", "vlcp-prototype", "10", 70.0),
        row("rded", "random", "10", 66.0),
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


def test_rows_without_a_contract_column_are_refused_naming_it(tmp_path):
    (tmp_path / "cut.csv").write_text(
        "method,ipc,seed,model,eval_seed,top1_best,top1_last\nrandom,10,0,convnet6,0,50.0,49.0\n"
    )
    with pytest.raises(contract.ContractError, match=r"cut.csv: missing column\(s\) \['protocol'\]"):
        contract.read_accuracy(tmp_path / "cut.csv")


def reference_lrs(ior, hlr, lrs_lambda=0.5):
    """DD-Ranking's formula as written in ddranking/metrics/soft_label.py lines 563-564 (commit b8b0966)."""
    alpha = lrs_lambda * ior - (1 - lrs_lambda) * hlr
    return (math.exp(alpha) - math.exp(-1)) / (math.exp(1) - math.exp(-1))


def test_lrs_is_ddranking_formula_on_fractions(tmp_path):
    # DD-Ranking's code (soft_label.py lines 561-564) feeds it percentages; its documentation
    # (doc/introduction.md lines 58-65) normalises LRS to [0, 1], hence fractions: we follow the documentation.
    for ior, hlr in ((0.12, 0.28), (-0.3, 0.9), (0.5, 0.0), (1.0, -1.0)):
        assert math.isclose(label_robust_score(ior, hlr), reference_lrs(ior, hlr), rel_tol=1e-12, abs_tol=1e-15)
    rows = [
        row("minimax", "vlcp-prototype", "10", 62.0),
        row("minimax", "random", "10", 50.0),
        row("minimax", "full", "all", 90.0),
    ]
    contract.write_accuracy(tmp_path / "a.csv", rows)
    scored, _ = add_scores(summarize(contract.read_accuracy(tmp_path / "a.csv")))
    lrs = scored[(scored.metric == "top1_best") & (scored.method == "vlcp-prototype")].lrs.item()
    assert lrs == round(reference_lrs(0.12, 0.28), 4) == 0.2362
    assert round(reference_lrs(12, 28), 4) == -0.1564  # the percentages' LRS: near its floor for most sets


REFERENCE = {
    "convnet6": {"top1": 80.0, "source": "an earlier run"},
    "resnet18": {"top1": 70.0, "source": "Table 2 of a paper"},
}
TWO_MODELS = [
    row("minimax", "vlcp-prototype", "10", 60.0),
    row("minimax", "random", "10", 50.0),
    row("minimax", "full", "all", 90.0),
    row("minimax", "vlcp-prototype", "10", 40.0, model="resnet18"),
    row("minimax", "random", "10", 30.0, model="resnet18"),
    row("rded", "vlcp-prototype", "10", 55.0, model="resnet18"),
    row("rded", "random", "10", 45.0, model="resnet18"),
]


@pytest.fixture
def two_models(tmp_path):
    contract.write_accuracy(tmp_path / "a.csv", TWO_MODELS)
    return summarize(contract.read_accuracy(tmp_path / "a.csv"))


def scored_rows(summary, full_reference=None):
    scored, missing = add_scores(summary, full_reference=full_reference)
    return scored, scored[scored.metric == "top1_best"].set_index(["protocol", "method", "model"]), missing


def test_full_reference_fills_hlr_where_no_full_run_exists(two_models):
    _, best, missing = scored_rows(two_models, REFERENCE)
    # convnet6 has its own 'full' run (90 %), which wins over the reference's 80 %
    own = best.loc[("minimax", "vlcp-prototype", "convnet6")]
    assert (own.hlr, own.full_source) == (0.3, "run")
    # resnet18 has none: HLR = 0.70 - 0.40 from the reference, for both protocols, and the source is recorded
    for protocol in ("minimax", "rded"):
        r = best.loc[(protocol, "vlcp-prototype", "resnet18")]
        assert (r.ior, r.hlr, r.full_source) == (0.1, 0.3, "Table 2 of a paper")
        assert r.lrs == round(label_robust_score(0.1, 0.3), 4)
    assert not [m for m in missing if m.startswith("HLR")]
    # without it, resnet18's HLR and LRS are empty and its 'full' run is asked for
    _, best, missing = scored_rows(two_models)
    r = best.loc[("minimax", "vlcp-prototype", "resnet18")]
    assert math.isnan(r.hlr) and math.isnan(r.lrs) and pd.isna(r.full_source)
    assert "HLR: method 'full' under protocol minimax (resnet18), or evaluate.full_reference.resnet18" in missing


def test_soft_label_rows_are_marked_not_comparable(two_models, tmp_path):
    scored, best, _ = scored_rows(two_models, REFERENCE)
    # the hard-label accuracies behind HLR are the Minimax protocol's networks: the row's own only under minimax
    assert best.loc[("minimax", "vlcp-prototype", "resnet18")].hlr_comparable is True
    assert best.loc[("rded", "vlcp-prototype", "resnet18")].hlr_comparable is False
    assert best.loc[("minimax", "full", "convnet6")].hlr_comparable is None
    write_markdown(tmp_path / "summary.md", scored)
    notes = (tmp_path / "summary.md").read_text().split("| rded | resnet18 | vlcp-prototype | 10 |")[1]
    assert "minimax row compare the set with the whole train set on the row's own network" in notes
    assert "soft-label row take both hard-label accuracies from the Minimax protocol's network" in notes
    assert "not comparable with DD-Ranking's leaderboard" in notes
    assert "Acc(whole real train set) of resnet18 from evaluate.full_reference: Table 2 of a paper." in notes
    assert "of convnet6 from" not in notes
    assert notes.rstrip().endswith("and this summary does not)."), "the summary ends by pointing at cost.md"


def test_aggregate_command_line_takes_the_reference_as_json(tmp_path):
    contract.write_accuracy(tmp_path / "a.csv", TWO_MODELS)
    out = {name: tmp_path / name for name in ("accuracy.csv", "summary.csv", "summary.md", "accuracy.png")}
    main(
        [
            "table",
            "--rows",
            str(tmp_path / "a.csv"),
            "--accuracy",
            str(out["accuracy.csv"]),
            "--summary",
            str(out["summary.csv"]),
            "--markdown",
            str(out["summary.md"]),
            "--plot",
            str(out["accuracy.png"]),
            "--full-reference",
            json.dumps(REFERENCE),
        ]
    )
    summary = pd.read_csv(out["summary.csv"])
    assert set(summary.full_source.dropna()) == {"run", "Table 2 of a paper"}


def test_full_reference_needs_a_source():
    config = load_yaml(REPO / "config" / "config.yaml")
    schema = str(REPO / "config" / "schema.yaml")
    default = deep_update(config, {})
    validate(default, schema)
    assert default["evaluate"]["full_reference"] == {}
    validate(deep_update(config, {"evaluate": {"full_reference": {"resnet18": {"top1": 56.5, "source": "x"}}}}), schema)
    for entry in ({"top1": 56.5}, {"top1": 56.5, "source": " "}, {"top1": 101, "source": "x"}):
        with pytest.raises(WorkflowError):
            validate(deep_update(config, {"evaluate": {"full_reference": {"resnet18": entry}}}), schema)
    with pytest.raises(WorkflowError):
        validate(
            deep_update(config, {"evaluate": {"full_reference": {"resnet50": {"top1": 1, "source": "x"}}}}), schema
        )
