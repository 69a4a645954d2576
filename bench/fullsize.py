"""The full-width tier's figures: each stage's wall time and peak memory, into bench/RESULTS.md.

Runs the tier's workflow test (tests/test_fullsize.py: SD v1.5 and LLaVA-1.5-7B shapes, random weights,
on the CPU) with VLCP_FULLSIZE_REPORT set, then writes the section "## Full width on the CPU" of
bench/RESULTS.md from what it measured: per rule the jobs, their summed and longest wall time
(Snakemake's benchmark files) and the largest peak resident memory of a job (the kernel's count, the
last line of each job's log).

    python bench/fullsize.py            # about 10 minutes on 2 cores
    python bench/fullsize.py --from F   # only render F, a report written earlier
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from gpu import replace_section

HERE = Path(__file__).parent
REPO = HERE.parent
HEADING = "## Full width on the CPU"
# A job's log folder (under results/<run>/logs/) -> its rule.
LOG_RULES = {
    "caption": "caption",
    "encode": "encode",
    "finetune": "finetune",
    "cluster": "cluster",
    "prototypes": "text_prototype",
    "d4m": "d4m_prototype",
    "teacher": "teacher",
    "select": "select",
    "eval/minimax": "evaluate",
    "eval/rded": "soft_label",
    "synthesize/d4m": "d4m_synthesize",
    "synthesize": "synthesize",
}


def rule_of_log(path):
    for prefix, rule in sorted(LOG_RULES.items(), key=lambda item: -len(item[0])):
        if path == prefix or path.startswith(prefix + "/") or path.startswith(prefix + "."):
            return rule
    return None


def table(report):
    """Rows per rule: jobs, summed and longest wall time, largest peak memory."""
    per_rule = {}
    for row in report["jobs"]:
        entry = per_rule.setdefault(row["rule"], {"jobs": 0, "wall": 0.0, "longest": 0.0, "peak": None})
        seconds = row["wall_min"] * 60
        entry["jobs"] += 1
        entry["wall"] += seconds
        entry["longest"] = max(entry["longest"], seconds)
    for log, peak in report["peaks"].items():
        rule = rule_of_log(log)
        if rule in per_rule and peak is not None:
            per_rule[rule]["peak"] = max(per_rule[rule]["peak"] or 0, peak)
    lines = ["| rule | jobs | wall time, all jobs | longest job | peak memory of a job |", "|---|---|---|---|---|"]
    for rule, e in sorted(per_rule.items(), key=lambda item: -item[1]["wall"]):
        peak = f"{e['peak']:.1f} GiB" if e["peak"] is not None else "-"
        lines.append(f"| {rule} | {e['jobs']} | {e['wall']:.0f} s | {e['longest']:.0f} s | {peak} |")
    return lines, per_rule


def section(report, machine):
    lines, per_rule = table(report)
    peak = max((e["peak"] or 0) for e in per_rule.values())
    return "\n".join(
        [
            HEADING,
            "",
            f"Written by `python bench/fullsize.py` on {machine}: `pytest -m fullsize`'s workflow run "
            "(tests/fullsize.yaml: SD v1.5's U-Net, VAE, text encoder and safety checker and LLaVA-1.5-7B with its "
            "language model cut to 2 layers, random weights in the hub layouts; 2 classes of 6 digits at 128 px; "
            "the fine-tune stopped by Ctrl-C after its checkpoint and resumed, so its row holds both attempts' "
            f"last). The run took {report['wall_seconds']} s in all, the interrupted first attempt and the "
            f"models' saving not counted; the largest job peaked at {peak:.1f} GiB.",
            "",
            *lines,
            "",
        ]
    )


def machine_name():
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if "model name" in ln),
        platform.processor(),
    )
    return f"{os.cpu_count()} cores ({cpu}), {datetime.date.today().isoformat()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, help="a report written earlier")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    source = args.source
    if source is None:
        source = Path(tempfile.mkdtemp()) / "fullsize.json"
        env = dict(os.environ, VLCP_FULLSIZE_REPORT=str(source), HF_HUB_OFFLINE="1")
        command = [sys.executable, "-m", "pytest", "-m", "fullsize", "tests/test_fullsize.py", "-k", "every_gpu_rule"]
        subprocess.run(command, cwd=REPO, env=env, check=True)
    report = json.loads(source.read_text())
    args.out.write_text(replace_section(args.out.read_text(), section(report, machine_name()), HEADING))
    print("\n".join(table(report)[0]))
    print(f"section {HEADING!r} of {args.out} written")


if __name__ == "__main__":
    main()
