"""Every command line the documentation shows works as written: Snakemake reads its targets as targets
and its config files as config files, and the export command plans on the demo."""

import re
import shlex

import pytest

from conftest import REPO, snakemake

DOCS = [
    "README.md",
    "config/README.md",
    "slurm/README.md",
    "bench/README.md",
    "CONTRIBUTING.md",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")),
]
BLOCK = re.compile(r"```[a-z]*\n(.*?)```", re.S)
SPAN = re.compile(r"`([^`\n]+)`")


def code_lines(text):
    """The lines of the fenced code blocks of a markdown text, then its inline code spans."""
    blocks = [line for block in BLOCK.findall(text) for line in block.splitlines()]
    return blocks + SPAN.findall(BLOCK.sub("", text))


def snakemake_commands():
    """(file, words after 'snakemake') of every snakemake command line in the docs, in code spans and blocks."""
    found = []
    for name in DOCS:
        path = REPO / name
        if not path.exists():
            continue
        for line in code_lines(path.read_text()):
            line = line.split("#")[0].strip().split(";")[-1].strip()
            if "snakemake" in line:
                words = shlex.split(line)
                for start, word in enumerate(words):
                    if word == "snakemake" or word.endswith("/snakemake"):
                        found.append((name, words[start + 1 :]))
                        break
    return found


COMMANDS = snakemake_commands()


def test_the_docs_show_snakemake_commands():
    assert len(COMMANDS) >= 8 and any("export" in words for _, words in COMMANDS)


@pytest.mark.parametrize("where,words", COMMANDS, ids=[" ".join(w)[:60] for _, w in COMMANDS])
def test_every_snakemake_command_reads_its_targets_as_targets(where, words):
    # --configfile takes every word after it: a target written after it is read as a config file
    from snakemake.cli import get_argument_parser

    if words in (["ARGS"], ["--version"]) or not words:
        return
    args = get_argument_parser().parse_args([w for w in words if w != "..."])
    for config in args.configfile or []:
        assert config.suffix in (".yaml", ".yml") or re.fullmatch(r"<\w+>|FILE", str(config)), (
            f"{where}: `snakemake {' '.join(words)}` reads {config} as a config file; put targets before --configfile"
        )


@pytest.mark.workflow
def test_the_export_command_plans_as_written(tmp_path):
    _, words = next(c for c in COMMANDS if "export" in c[1] and "--configfile" in c[1])
    demo = [str(REPO / "config" / "demo.yaml") if re.fullmatch(r"<\w+>", w) else w for w in words]
    result = snakemake(tmp_path, *demo, "-n")
    assert "export_set" in result.stdout and "export_captions" in result.stdout


@pytest.mark.workflow
def test_the_cpu_trial_command_plans_as_written_on_a_dataset_of_shapes(tmp_path):
    """The README's CPU trial: config/cpu-trial.yaml over a user's config of a few lines plans every stage on
    the tiny models, the tiny diffusion model pretrained on the run's own train images first."""
    from vlcp.shapes import write_shapes

    _, words = next(c for c in COMMANDS if "config/cpu-trial.yaml" in c[1])
    write_shapes(tmp_path / "data" / "shapes", train=6, val=2)
    (tmp_path / "mine.yaml").write_text("run: shapes\ndataset: {root: data/shapes}\nipc: [1, 5]\n")
    args = [str(tmp_path / w) if w == "mine.yaml" else str(REPO / w) if w.startswith("config/") else w for w in words]
    result = snakemake(tmp_path, *args, "-n")
    jobs = {
        line.split()[0]: int(line.split()[1]) for line in result.stdout.splitlines() if re.fullmatch(r"\w+ +\d+", line)
    }
    assert jobs["tiny_pretrain"] == 1 and jobs["tiny_model"] == 2, jobs
    assert jobs["caption"] == 6 and jobs["finetune"] == 1 and jobs["synthesize"] == 12, jobs
    assert "Warning:" not in result.stderr, "ipc 5 of 6 images, the tiny model pretrained on these images"
    # the same file without the trial's pretraining: the plan says that the tiny model draws digits
    (tmp_path / "digits.yaml").write_text("models: {tiny_pretrained: true}\n")
    result = snakemake(tmp_path, *args, str(tmp_path / "digits.yaml"), "-n")
    assert "Warning: models.diffusion = 'tiny' carries weights pretrained on the demo's handwritten digits" in (
        result.stderr
    )
    assert "tiny_pretrain" not in result.stdout
