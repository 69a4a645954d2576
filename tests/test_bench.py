"""The benchmarks' own bookkeeping: the demo's accuracy table written into bench/RESULTS.md, and the GPU
script's parts."""

import json
import re
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))

import demo_accuracy  # noqa: E402
import gpu  # noqa: E402


def test_the_demo_table_is_read_from_a_runs_summary(tmp_path):
    summary = tmp_path / "summary.csv"
    summary.write_text(
        "protocol,method,ipc,model,metric,mean,std,runs\n"
        "minimax,vlcp-prototype,5,convnet6,top1_best,71.0,0.0,1\n"
        "minimax,vlcp-prototype,5,convnet6,top1_last,70.0,0.0,1\n"
        "minimax,random,1,convnet6,top1_best,57.5,0.0,1\n"
    )
    table = demo_accuracy.demo_table(summary)
    assert table.splitlines()[2:] == [
        "| minimax | random | convnet6 | 1 | 57.5 | 1 |",
        "| minimax | vlcp-prototype | convnet6 | 5 | 71.0 | 1 |",
    ]


def test_a_demo_section_replaces_only_its_own_machine_and_label():
    text = "# R\n\nx\n\n## A\n\na\n\n## The demo's accuracies (CPU1, 2026-01-01)\n\nold\n\n## B\n\nb\n"
    new = demo_accuracy.section("new table", "CPU1", "2026-02-01")
    replaced = demo_accuracy.replace_section(text, new, "CPU1")
    assert "old" not in replaced and replaced.count("## The demo's accuracies") == 1 and "## B\n\nb" in replaced
    other = demo_accuracy.replace_section(
        text, demo_accuracy.section("t", "CPU1, strength 0.7", "d"), "CPU1, strength 0.7"
    )
    assert "old" in other and other.count("## The demo's accuracies") == 2


def test_every_part_of_the_gpu_suite_has_an_estimate_that_decides_whether_it_starts():
    tests = (REPO / "tests" / "test_gpu.py").read_text()
    parts = set(re.findall(r'budget\("(\w+)"\)', tests))
    assert parts == {"models", "encode", "synthesize", "caption", "evaluate", "finetune"}
    estimates = re.search(r'"cuda": \{([^}]*)\}', tests).group(1)
    assert parts == set(re.findall(r'"(\w+)": \d+', estimates))
    readme = (REPO / "bench" / "README.md").read_text()
    assert all(f"| {part} |" in readme for part in parts), "bench/README.md says how each part was estimated"


def test_a_nodes_figures_are_recorded_once_and_rendered_with_device_versions_and_skips(tmp_path, monkeypatch):
    figures = tmp_path / "node.jsonl"
    rows = [
        {"stage": "run", "run_id": "r1", "date": "2026-12-02", "command": "python3 bench/gpu.py --wheels .whl",
         "python": "3.12.3", "cuda": "13.0", "gpu": "NVIDIA H200 (140 GiB)", "torch": "2.11.0 (/usr/lib)",
         "transformers": "5.24.0 (/tmp/site)"},
        {"stage": "encode", "run_id": "r1", "device": "NVIDIA H200", "seconds": 3.2, "peak_gib": 4.1},
        {"stage": "finetune", "run_id": "r1", "device": "NVIDIA H200", "skipped": "not started: its estimate"},
        {"stage": "outcome", "run_id": "r1", "pytest": "exit 0", "seconds": 300, "budget": 540},
    ]  # fmt: skip
    figures.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"stage": "tor')  # a line torn by a kill
    record, results = tmp_path / "gpu-figures.jsonl", tmp_path / "RESULTS.md"
    results.write_text("# R\n\n## GPU\n\nNo GPU run has been recorded yet.\n\n## Next\n\nn\n")
    monkeypatch.setattr(gpu, "RECORD", record)
    gpu.record(figures, results)
    gpu.record(figures, results)  # twice: the rows are kept once
    assert len(record.read_text().splitlines()) == 4
    text = results.read_text()
    assert "### NVIDIA H200 (140 GiB), 2026-12-02: `python3 bench/gpu.py --wheels .whl`" in text
    assert "transformers 5.24.0" in text and "exit 0, 300 s of a 540 s budget" in text
    assert "| finetune |" in text and "not started: its estimate" in text and "## Next\n\nn\n" in text
    assert "No GPU run has been recorded yet." not in text


def test_the_gpu_section_is_replaced_and_what_follows_it_kept():
    text = "# R\n\n## A\n\na\n\n## GPU\n\nold\n\n### suite\n\nx\n\n## The demo's accuracies (CPU, d)\n\nt\n"
    replaced = gpu.replace_section(text, "## GPU\n\nnew\n")
    assert "old" not in replaced and "## GPU\n\nnew\n\n## The demo's accuracies (CPU, d)\n\nt\n" in replaced
    assert gpu.replace_section("# R\n", "## GPU\n\nnew\n") == "# R\n\n## GPU\n\nnew\n"
