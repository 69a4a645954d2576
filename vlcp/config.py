"""Messages for configuration errors, and the checks a JSON Schema cannot express.

The Snakefile validates the config with ``snakemake.utils.validate``; these
helpers turn a failure into one line that names the key, the value and what is
allowed, before any job starts.
"""

import jsonschema

from vlcp.errors import VlcpError

SCHEMA_WORDS = {
    "minimum": "at least {}",
    "maximum": "at most {}",
    "exclusiveMinimum": "greater than {}",
    "exclusiveMaximum": "less than {}",
    "multipleOf": "a multiple of {}",
    "minItems": "at least {} item(s)",
    "minLength": "at least {} character(s)",
    "pattern": "matching the pattern {}",
}


class ConfigError(VlcpError, ValueError):
    """A configuration value that is not allowed; the message names the key."""


def key_path(path):
    """``['cluster', 'contamination']`` -> ``'cluster.contamination'``; list items as ``[i]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def allowed(schema):
    """What a schema allows, in words: type, choices, range and its description."""
    words = []
    if "enum" in schema:
        words.append("one of " + ", ".join(repr(v) for v in schema["enum"]))
    elif "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        words.append(" or ".join(kinds))
    for keyword, template in SCHEMA_WORDS.items():
        if keyword in schema:
            words.append(template.format(schema[keyword]))
    if schema.get("type") == "object" and "properties" in schema:
        words.append("keys " + ", ".join(schema["properties"]))
    text = ", ".join(words)
    if "description" in schema:
        text += f" ({schema['description'].strip()})"
    return text


def describe_validation_error(error):
    """One readable message for a ``jsonschema.ValidationError`` on the config."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        unknown = sorted(set(error.instance) - set(known))
        where = f"under {key_path(path)}" if path else "at the top level"
        return (
            f"Invalid config: unknown key(s) {', '.join(map(repr, unknown))} {where}. "
            f"Allowed keys there: {', '.join(known)}. See config/schema.yaml."
        )
    if error.validator == "required":
        return f"Invalid config at {key_path(path)}: {error.message}. See config/schema.yaml."
    value = error.instance
    return (
        f"Invalid config: {key_path(path)} = {value!r} is not allowed ({error.message}). "
        f"Allowed: {allowed(error.schema)}"
    )


def find_validation_error(exc):
    """The ``jsonschema.ValidationError`` behind Snakemake's ``WorkflowError``, if any."""
    seen = [exc]
    while seen:
        item = seen.pop()
        if isinstance(item, jsonschema.ValidationError):
            return jsonschema.exceptions.best_match([item, *item.context]) if item.context else item
        seen.extend(arg for arg in getattr(item, "args", ()) if isinstance(arg, BaseException))
        seen.extend(e for e in (item.__cause__, item.__context__) if e is not None)
    return None


def epochs_for_ipc(table, ipc, scale=1.0):
    """Training epochs of the evaluation protocol for one IPC (the first row covering it)."""
    for row in sorted(table, key=lambda r: r["max_ipc"]):
        if ipc <= row["max_ipc"]:
            return max(1, round(row["epochs"] * scale))
    raise ConfigError(
        f"Invalid config: evaluate.epochs has no entry for ipc {ipc} "
        f"(largest max_ipc is {max(r['max_ipc'] for r in table)}); add a row with max_ipc >= {ipc}."
    )


def check_config(config):
    """Checks across keys that the schema cannot state; raises ConfigError naming the key."""
    for ipc in config["ipc"]:
        epochs_for_ipc(config["evaluate"]["epochs"], ipc)
    dataset = config["dataset"]
    if dataset["source"] == "demo" and dataset["label_table"] == "imagenet":
        raise ConfigError(
            "Invalid config: dataset.label_table = 'imagenet' cannot label the demo digits; "
            "use the demo's labels.tsv under dataset.root, or 'folder'."
        )
    finetune = config["finetune"]
    if finetune["from_latents"] and not finetune["center_crop"]:
        raise ConfigError(
            "Invalid config: finetune.center_crop = false needs finetune.from_latents = false "
            "(cached latents are centre crops; random crops must be encoded at every step)."
        )
    listed = set(dataset["classes"])
    stray = sorted(set(dataset["labels"]) - listed) if listed else []
    if stray:
        raise ConfigError(
            f"Invalid config: dataset.labels names class(es) {stray} that dataset.classes does not list; "
            "add them to dataset.classes or remove their labels."
        )
