"""The conda environments of the rule families list the same packages and versions as pyproject.toml."""

import re
import tomllib

from conftest import REPO, load_yaml

DRIVER_ONLY = {"snakemake", "pygments", "snakemake-executor-plugin-slurm"}  # run where snakemake runs, not inside jobs


def requirement(spec):
    name = re.match(r"[A-Za-z0-9_.-]+", spec).group(0).lower()
    return name, spec[len(name) :].strip()


def pyproject_requirements():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return dict(requirement(spec) for spec in project["dependencies"])


def env_requirements(name):
    env = load_yaml(REPO / "envs" / f"{name}.yaml")
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert "python=3.11" in env["dependencies"]
    return dict(requirement(spec) for spec in pip)


def test_env_versions_match_pyproject():
    declared = pyproject_requirements()
    for env in ("gpu", "cpu"):
        for name, spec in env_requirements(env).items():
            assert name in declared, f"envs/{env}.yaml lists {name}, which pyproject.toml does not"
            assert spec == declared[name], f"envs/{env}.yaml pins {name}{spec}, pyproject.toml {declared[name]}"


def test_every_job_dependency_is_in_an_env():
    covered = set(env_requirements("gpu")) | set(env_requirements("cpu"))
    missing = set(pyproject_requirements()) - DRIVER_ONLY - covered
    assert not missing, f"in pyproject.toml but in no envs/*.yaml: {sorted(missing)}"


def test_every_rule_names_an_existing_env():
    for smk in (REPO / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve().is_file(), f"{smk.name} names missing {env}"
