"""The benchmarks' own bookkeeping: the demo's accuracy table written into bench/RESULTS.md, and the GPU
script's parts."""

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


def test_the_gpu_parts_cover_the_suite_and_every_benchmark():
    tests = (REPO / "tests" / "test_gpu.py").read_text()
    for words in gpu.SUITE_PARTS.values():
        assert f"def test_{words}" in tests, f"no GPU-suite test matches -k {words}"
    scripts = {p.name for p in (REPO / "bench").glob("*.py")} - {"common.py", "run.py", "gpu.py", "demo_accuracy.py"}
    assert set(gpu.BENCH_PARTS.values()) == scripts


def test_the_gpu_section_is_replaced_and_what_follows_it_kept():
    text = "# R\n\n## A\n\na\n\n## GPU\n\nold\n\n### suite\n\nx\n\n## The demo's accuracies (CPU, d)\n\nt\n"
    replaced = gpu.replace_gpu_section(text, "## GPU\n\nnew\n")
    assert "old" not in replaced and "## GPU\n\nnew\n\n## The demo's accuracies (CPU, d)\n\nt\n" in replaced
    assert gpu.replace_gpu_section("# R\n", "## GPU\n\nnew\n") == "# R\n\n## GPU\n\nnew\n"
