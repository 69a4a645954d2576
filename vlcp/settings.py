"""Stage settings, defined once: in config/schema.yaml.

A stage's command line takes the keys of its config section as options (``--key-name``), typed,
constrained and defaulted as the schema says, and the keys of its ``execution`` section (how it runs:
inference batch sizes, loader workers, checkpoint cadence; never what it computes). The workflow
renders the same sections back into options with ``options``, so a setting is spelled in the schema
and in the one module that reads it. Keys marked ``x-workflow`` in the schema are read by the
workflow itself (which jobs exist, which files a job reads, values resolved into other settings) and
are not options of a stage.
"""

import argparse
import functools
import shlex
from pathlib import Path

import yaml

SCHEMA = Path(__file__).resolve().parents[1] / "config" / "schema.yaml"
WORKFLOW_ONLY = "x-workflow"
EXECUTION = "execution"

PARSE = {"integer": int, "number": float, "string": str}


@functools.cache
def schema():
    with SCHEMA.open() as handle:  # libyaml's loader where PyYAML has it: every job parses the workflow
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def section(name, execution=False):
    """The schema's properties of config section ``name`` (of ``execution.<name>`` when asked)."""
    properties = schema()["properties"]
    if execution:
        properties = properties[EXECUTION]["properties"]
        if name not in properties:
            return {}
    return properties[name]["properties"]


def stage_keys(name):
    """The keys of section ``name`` that its stage takes as options, in schema order: neither the workflow's
    own keys nor a section nested in it (another stage's settings for this method, as d4m.synthesize)."""
    return [key for key, spec in section(name).items() if not (spec.get(WORKFLOW_ONLY) or "properties" in spec)]


def stage_settings(config, name):
    """The settings of stage ``name`` from a validated config: what its outputs depend on."""
    return {key: config[name][key] for key in stage_keys(name)}


def execution_settings(config, name):
    """The ``execution`` settings of stage ``name`` from a validated config: changing them changes no result."""
    return {key: config[EXECUTION][name][key] for key in section(name, execution=True)}


def flag(key):
    return "--" + key.replace("_", "-")


def types_of(spec):
    kinds = spec.get("type", "string")
    return [kinds] if isinstance(kinds, str) else list(kinds)


def argument(key, spec):
    """argparse keywords for the schema property ``spec`` of ``key``."""
    kinds = [k for k in types_of(spec) if k != "null"]
    help_text = " ".join(str(spec.get("description", "")).split()).replace("%", "%%")
    keywords = {"dest": key, "default": spec.get("default"), "help": help_text or None}
    kind = kinds[0] if kinds else "string"
    if kind == "boolean":
        return {**keywords, "action": argparse.BooleanOptionalAction}
    if kind == "array":
        items = spec.get("items", {})
        return {**keywords, "nargs": "+", "type": PARSE[types_of(items)[0]], **choices(items)}
    return {**keywords, "type": PARSE[kind], **choices(spec)}


def choices(spec):
    return {"choices": spec["enum"]} if "enum" in spec else {}


def add_settings(parser, name, **overrides):
    """Add the options of stage ``name`` to ``parser``: its section's settings, then its execution
    settings. ``overrides`` replace the argparse keywords of a key (a value the workflow resolves,
    such as evaluation's epochs) or add an option for a workflow-only key."""
    group = parser.add_argument_group(f"settings (config section '{name}')")
    specs = {key: section(name)[key] for key in stage_keys(name)}
    for key in overrides:
        specs.setdefault(key, {})  # a workflow-only key: its options are all in the override
    for key, spec in specs.items():
        group.add_argument(flag(key), **{**argument(key, spec), **overrides.get(key, {})})
    executed = section(name, execution=True)
    if executed:
        group = parser.add_argument_group(
            f"execution (config section '{EXECUTION}.{name}'; results do not depend on them)"
        )
        for key, spec in executed.items():
            group.add_argument(flag(key), **argument(key, spec))


def options(settings):
    """``settings`` as a command line for ``add_settings``'s parser, quoted for the shell; None is left out."""
    words = []
    for key, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            words.append(flag(key) if value else "--no-" + key.replace("_", "-"))
        elif isinstance(value, (list, tuple)):
            words += [flag(key), *(shlex.quote(str(v)) for v in value)]
        else:
            words += [flag(key), shlex.quote(str(value))]
    return " ".join(words)


class ResultNeutral:
    """Options that change how a job runs, never its outputs: rendered into the command line like any
    other, but not a plain value, so Snakemake leaves them out of the params it compares to decide
    what to rerun (it tracks only params of built-in types)."""

    def __init__(self, settings):
        self.text = options(settings)

    def __str__(self):
        return self.text

    def __format__(self, spec):
        return format(self.text, spec)
