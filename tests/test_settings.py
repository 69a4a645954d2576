"""A stage setting is defined once, in config/schema.yaml: each stage's command line takes it with the
schema's default, and what the workflow renders from a config parses back to the config's values."""

import argparse
import importlib
import shlex

import pytest
from snakemake.utils import validate

from conftest import REPO, deep_update, load_yaml
from vlcp.config import evaluation_settings, soft_label_settings, teacher_settings
from vlcp.settings import ResultNeutral, execution_settings, options, section, stage_keys, stage_settings

# The arguments each stage needs besides its settings (files, wildcards).
REQUIRED = {
    "caption": "--index a --root r --model m --work w --out o",
    "finetune": "--model m --index a --captions c --out o --work w",
    "encode": "--index a --root r --model m --out o",
    "cluster": "--latents l --ipc 1 --seed 0 --out o --centres c",
    "text_prototype": "--captions c --clusters k --index i --out o",
    "synthesize": "--model m --clusters k --centres c --prototypes p --class c --seed 0 --size 32 --work w --out o",
    "evaluate": "--train-dir d --val-index v --root r --model convnet6 --seed 0 --method m --ipc 1 --distill-seed 0"
    " --out o",
    "rded": "--train-dir d --val-index v --root r --model convnet6 --seed 0 --method m --ipc 1 --distill-seed 0"
    " --teacher t --teacher-architecture convnet6 --batch-size 4 --input-size 32 --out o",
    "teacher": "--train-index t --val-index v --root r --out o",
    "d4m": "--latents l --index i --ipc 1 --seed 0 --clusters k --centres c --prototypes p",
}
# The config section of each stage, where it is not the stage's own name.
SECTION = {"rded": "soft_label"}
# What the workflow resolves for evaluation before the job starts (vlcp.config.evaluation_settings).
RESOLVED = "--epochs 7 --test-every 1 --batch-size 4 --input-size 32 --learning-rate 0.1 --weight-decay 0"


class Parsed(Exception):
    pass


def parse(stage, argv, monkeypatch):
    """The namespace stage ``stage``'s own parser makes of ``argv`` (the stage itself does not run)."""
    original = argparse.ArgumentParser.parse_args

    def stop(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop)
    module = importlib.import_module(f"vlcp.{stage}")
    with pytest.raises(Parsed) as parsed:
        module.main(shlex.split(argv))
    return vars(parsed.value.args[0])


def demo_config():
    config = deep_update(load_yaml(REPO / "config" / "config.yaml"), load_yaml(REPO / "config" / "demo.yaml"))
    validate(config, str(REPO / "config" / "schema.yaml"))
    return config


@pytest.mark.parametrize("stage", sorted(REQUIRED))
def test_a_stage_takes_every_setting_of_its_section_with_the_schemas_default(stage, monkeypatch):
    extra = f" {RESOLVED}" if stage in ("evaluate", "teacher") else ""
    parsed = parse(stage, REQUIRED[stage] + extra, monkeypatch)
    resolved = {flag[2:].replace("-", "_") for flag in shlex.split(RESOLVED)[::2]} if extra else set()
    if stage == "rded":
        resolved = {"batch_size", "input_size"}
    if stage == "synthesize":
        resolved = {"candidates"}  # the job's own count, from its set's name
    name = SECTION.get(stage, stage)
    for key, spec in {**section(name), **section(name, execution=True)}.items():
        if key not in stage_keys(name) and key not in section(name, execution=True) and key not in resolved:
            assert key not in parsed, f"{stage}: the workflow-only key {key} is not an option"
            continue
        assert key in parsed, f"{stage}: config key {key} is not an option of the stage"
        if key not in resolved:
            assert parsed[key] == spec.get("default"), (
                f"{stage}.{key}: {parsed[key]!r} != schema {spec.get('default')!r}"
            )


@pytest.mark.parametrize("stage", sorted(REQUIRED))
def test_what_the_workflow_renders_parses_back_to_the_config(stage, monkeypatch):
    config = demo_config()
    name = SECTION.get(stage, stage)
    settings = stage_settings(config, name)
    if stage == "evaluate":
        settings = evaluation_settings(config["evaluate"], "5", 10, config["dataset"]["eval_size"])
    if stage == "rded":
        settings = soft_label_settings(config["soft_label"], "5", 10, config["dataset"]["eval_size"])
    if stage == "teacher":
        settings = teacher_settings(config, 10)
    execution = execution_settings(config, "evaluate" if stage == "teacher" else name)
    parsed = parse(stage, f"{REQUIRED[stage]} {options(settings)} {ResultNeutral(execution)}", monkeypatch)
    for key, value in {**settings, **execution}.items():
        assert parsed[key] == value, f"{stage}.{key}: parsed {parsed[key]!r}, config {value!r}"


def test_options_quote_for_the_shell_and_leave_out_none():
    text = options({"prompt": "a {label}'s photo", "on": True, "off": False, "steps": None, "pair": [0.5, 2]})
    assert shlex.split(text) == ["--prompt", "a {label}'s photo", "--on", "--no-off", "--pair", "0.5", "2"]


def test_result_neutral_options_are_not_params_snakemake_compares():
    # Snakemake decides that params changed by comparing the serialized params of built-in types; a
    # value it cannot represent is left out of the comparison.
    from snakemake.persistence import UNREPRESENTABLE
    from snakemake.persistence import PersistenceBase as Persistence

    assert Persistence._serialize_param_builtin(None, ResultNeutral({"batch_size": 3})) is UNREPRESENTABLE
    assert Persistence._serialize_param_builtin(None, options({"batch_size": 3})) == repr("--batch-size 3")
    assert f"{ResultNeutral({'batch_size': 3})}" == "--batch-size 3"


# The settings the workflow reads itself, by name, and why; every other setting of a stage reaches its job
# whole, through its section (stage_options, execution_options).
READ_BY_THE_WORKFLOW = {
    (
        "caption",
        "do_sample",
    ): "rules/functions/caption.smk: the sampling settings rerun nothing when decoding is greedy",
    ("finetune", "resolution"): "rules/functions/encode.smk: encode stores the fine-tune's latents at its resolution",
    ("finetune", "random_flip"): "rules/functions/encode.smk: ... and their mirror images for random flips",
    ("encode", "resolution"): "the same word as finetune.resolution, in the same line",
    ("teacher", "architecture"): "rules/common.smk: the teacher file the teacher rule makes is named by it",
}


def test_no_rule_reads_a_stage_setting_by_name_but_those_the_workflow_resolves():
    import re

    from vlcp.settings import schema

    texts = {
        p.relative_to(REPO).as_posix(): p.read_text() for p in [REPO / "Snakefile", *(REPO / "rules").rglob("*.smk")]
    }
    stages = [s for s in schema()["properties"] if section_exists(s) and s not in ("dataset", "models", "demo")]
    keys = [(s, k) for s in stages for k in [*stage_keys(s), *section(s, execution=True)]]
    stage_names = {"caption", "finetune", "encode", "cluster", "text_prototype", "synthesize", "evaluate"}
    assert {s for s, _ in keys} == stage_names | {"soft_label", "teacher", "d4m"}, "every stage's section"
    found = {(s, k): name for s, k in keys for name, text in texts.items() if re.search(rf"""\[["']{k}["']\]""", text)}
    assert set(found) == set(READ_BY_THE_WORKFLOW), found


def section_exists(name):
    from vlcp.settings import schema

    spec = schema()["properties"][name]
    return spec.get("type") == "object" and "properties" in spec and name not in ("execution", "resources")
