"""The documentation and the code's form: the README is a front page that links every moved section, the
configuration reference is what the schema gives, the schema's names are vlcp.names', and ruff finds
nothing to format or fix."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from vlcp import names
from vlcp.reference import REFERENCE, SCHEMA, documents

MOVED = [
    "docs/method.md",
    "docs/fidelity.md",
    "docs/reruns.md",
    "docs/sharing.md",
    "docs/models.md",
    "config/README.md",
    "config/REFERENCE.md",
    "slurm/README.md",
    "bench/README.md",
    "CONTRIBUTING.md",
]


def test_the_readme_is_a_front_page_that_links_every_section():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) < 250
    links = set(re.findall(r"\]\(([^)#]+)", text))
    assert set(MOVED) <= links, f"not linked from README.md: {sorted(set(MOVED) - links)}"
    for doc in MOVED:
        assert (REPO / doc).is_file(), doc


def test_every_relative_link_of_the_docs_leads_to_a_file():
    for doc in ["README.md", *MOVED]:
        path = REPO / doc
        for target in re.findall(r"\]\(([^)#\s]+)", path.read_text()):
            if "://" not in target:
                assert (path.parent / target).exists(), f"{doc} links {target}, which is not there"


def test_the_generated_documents_are_current():
    for path, text in documents().items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `python -m vlcp.reference`"


def test_the_reference_lists_every_key_of_the_schema():
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    text = REFERENCE.read_text(encoding="utf-8")
    assert "| `cluster.contamination` | `0.1` | number, at least 0, at most 0.5 |" in text
    assert '| `execution.evaluate.image_loading` | `"auto"` | one of `auto`, `memory`, `stream` |' in text
    for section in ("caption", "finetune", "encode", "cluster", "text_prototype", "synthesize", "evaluate"):
        for key in schema["properties"][section]["properties"]:
            assert f"| `{section}.{key}` |" in text, f"{section}.{key}"


def schema_enum(schema, *path):
    for key in path:
        schema = schema["properties"][key]
    return tuple(schema["items"]["enum"] if "items" in schema else schema["enum"])


def test_the_schemas_names_are_vlcp_names():
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    assert schema_enum(schema, "methods") == names.METHODS
    assert schema_enum(schema, "evaluate", "models") == names.MODELS
    assert schema_enum(schema, "evaluate", "protocols") == names.PROTOCOLS
    assert schema_enum(schema, "text_prototype", "strategies") == names.STRATEGIES
    assert schema_enum(schema, "teacher", "architecture") == names.STUDENTS
    references = schema["properties"]["evaluate"]["properties"]["full_reference"]["propertyNames"]["enum"]
    assert tuple(references) == names.MODELS


def test_every_resources_entry_is_a_rules_and_every_rule_named_exists():
    import re

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    entries = set(schema["properties"]["resources"]["properties"])
    assert entries == {*names.RESOURCES.values(), "default"}
    rule_names = r"^\s*(?:rule (\w+):|use rule \w+ as (\w+) with:)"  # a rule, or one made from another
    rules = {
        n
        for smk in (REPO / "rules").glob("*.smk")
        for m in re.findall(rule_names, smk.read_text(), re.M)
        for n in m
        if n
    }
    assert set(names.RESOURCES) <= rules, set(names.RESOURCES) - rules
    # a rule asks for its own resources by its own name, so that vlcp.names.RESOURCES is the one mapping
    for smk in (REPO / "rules").glob("*.smk"):
        for rule, body in re.findall(r"^\s*rule (\w+):\n((?:[ \t]+.*\n|\n)*)", smk.read_text(), re.M):
            asked = set(re.findall(r'rule_(?:resources|threads)\("(\w+)"', body))
            assert asked <= {rule}, f"{smk.name}: rule {rule} asks for the resources of {asked}"


def test_the_modules_read_their_names_from_vlcp_names():
    from vlcp import external, networks, rded, select, text_prototype

    assert networks.MODELS is names.MODELS and select.METHODS is names.BASELINES
    assert text_prototype.STRATEGIES is names.STRATEGIES and rded.STUDENTS is names.STUDENTS
    assert external.RESERVED is names.METHODS
    code = [line.split("#")[0] for p in (REPO / "rules").rglob("*.smk") for line in p.read_text().splitlines()]
    rules = "\n".join(code)
    for word in ("herding", "kcenter", "resnetap10", "label+keywords"):
        assert word not in rules, f"rules/ spell {word!r} in code; take it from vlcp.names"


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_finds_nothing(command):
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run([str(ruff), *command, "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, f"run `ruff format . && ruff check --fix .`:\n{result.stdout}{result.stderr}"
