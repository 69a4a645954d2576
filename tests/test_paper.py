"""The paper's numbers as data, and the summary's verdict beside a run's rows (vlcp.paper)."""

import pandas as pd
import pytest
import yaml

from conftest import REPO
from vlcp import names, paper


@pytest.mark.parametrize(
    "cell, mean, std",
    [
        # the paper (vlcp.txt, Table 1): ImageWoof, ResNet-18, IPC 10, Ours / D4M / Full
        (("imagewoof", "minimax", "resnet18", "vlcp-prototype", "10"), 39.9, 2.6),
        (("imagewoof", "minimax", "resnet18", "d4m", "100"), 63.8, 1.3),
        (("imagewoof", "minimax", "convnet6", "full", "all"), 86.4, 0.2),
        # Table 2: ImageNette and ImageIDC, ResNetAP-10
        (("imagenette", "minimax", "resnetap10", "random", "10"), 54.2, 1.6),
        (("imageidc", "minimax", "resnetap10", "minimax", "20"), 59.1, 3.7),
        # Table 3: ImageNet-1K, ResNet-18 (RDED's protocol)
        (("imagenet1k", "rded", "resnet18", "vlcp-prototype", "50"), 60.5, 0.2),
        (("imagenet1k", "rded", "resnet18", "sre2l", "10"), 21.3, 0.6),
        # Table 4: CIFAR
        (("cifar100", "rded", "resnet18", "rded", "10"), 42.6, 0.2),
        # Table 5: prompt strategies (L+FK on ImageIDC at IPC 10; GGS on ImageNette at IPC 50)
        (("imageidc", "minimax", "resnetap10", "vlcp-label+keywords", "10"), 50.3, 0.5),
        (("imagenette", "minimax", "resnetap10", "vlcp-gpt", "50"), 78.0, 0.1),
    ],
)
def test_cells_of_the_paper(cell, mean, std):
    table = paper.numbers().set_index(["dataset", "protocol", "model", "method", "ipc"])
    found = table.loc[cell]
    assert (float(found["mean"]), float(found["std"])) == (mean, std)


def test_every_table_is_there_with_all_its_cells():
    counts = paper.numbers().groupby("table").size().to_dict()
    # Table 1: 5 IPCs x 3 models x 10 methods, GLaD at IPC 10 only (12 cells '-'), the whole set once per model
    assert counts == {1: 5 * 3 * 10 - 12 + 3, 2: 2 * 3 * 6, 3: 2 * 5, 4: 2 * 2 * 3, 5: 4 * 6}
    assert paper.datasets() == names.PAPER_DATASETS


def test_the_schema_names_the_papers_datasets():
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    assert schema["properties"]["paper_dataset"]["enum"] == [None, *paper.datasets()]
    for preset in paper.datasets():
        assert yaml.safe_load((REPO / "config" / "presets" / f"{preset}.yaml").read_text())["paper_dataset"] == preset


def summary_rows(*rows):
    columns = ["protocol", "method", "ipc", "model", "metric", "mean", "std", "runs"]
    return pd.DataFrame([dict(zip(columns, r)) for r in rows])


def test_a_row_within_the_two_stds_is_reproduced_and_one_outside_is_not():
    summary = summary_rows(
        ("minimax", "vlcp-prototype", "10", "resnetap10", "top1_best", 62.0, 1.0, 9),  # -2.8 <= 1.0 + 3.6
        ("minimax", "vlcp-prototype", "20", "resnetap10", "top1_best", 69.0, 1.0, 9),  # -2.4 > 1.0 + 0.5
        ("minimax", "vlcp-prototype", "20", "resnetap10", "top1_last", 69.0, 1.0, 9),  # not the paper's metric
        ("minimax", "herding", "10", "resnetap10", "top1_best", 50.0, 0.0, 1),  # no such cell in Table 2
    )
    compared = paper.compare(summary, "imagenette")
    assert list(compared["paper_verdict"]) == ["reproduced", "not reproduced", None, None]
    assert list(compared["paper_difference"][:2]) == [-2.8, -2.4] and list(compared["paper_table"][:2]) == [2, 2]
    text = paper.markdown(compared, "imagenette")
    assert "| minimax | resnetap10 | vlcp-prototype | 10 | 62.0 ± 1.0 | 64.8 ± 3.6 (2) | -2.8 | reproduced |" in text
    # what a config could add: the other IPC of VLCP, random at every IPC, the prompt strategies of Table 5
    left = {(c.method, c.ipc) for c in paper.not_run(compared, "imagenette")}
    assert ("vlcp-prototype", "50") in left and ("random", "10") in left and ("vlcp-gpt", "20") in left
    assert ("vlcp-prototype", "10") not in left and not any(m in {"dit", "dm", "minimax"} for m, _ in left)


def test_without_a_dataset_nothing_is_compared():
    summary = summary_rows(("minimax", "random", "10", "resnetap10", "top1_best", 54.2, 1.6, 9))
    assert paper.compare(summary, None)["paper_verdict"].isna().all() and paper.markdown(summary, None) == ""


def test_a_d4m_verdict_carries_the_note_on_where_the_papers_column_came_from():
    summary = summary_rows(("minimax", "d4m", "10", "resnetap10", "top1_best", 33.0, 1.0, 9))
    text = paper.markdown(paper.compare(summary, "imagewoof"), "imagewoof")
    assert "| 33.2 ± 2.1 (1) | -0.2 | reproduced (see the d4m note below) |" in text
    assert paper.D4M_NOTE in text and "ships ImageNet-1K scripts only" in paper.D4M_NOTE
    plain = paper.markdown(paper.compare(summary_rows(("minimax", "random", "10", "resnetap10", "top1_best", 30.0,
                                                        1.0, 9)), "imagewoof"), "imagewoof")  # fmt: skip
    assert paper.D4M_NOTE not in plain
