"""The generated documents: config/REFERENCE.md, every key of config/schema.yaml with its default, what
it allows and what it means; docs/paper.md, the paper's tables from vlcp/data/paper_numbers.csv; and the
sizing table of slurm/README.md, from vlcp/sizing.py and the presets. A test fails while one is stale.

    python -m vlcp.reference             # rewrites them
    python -m vlcp.reference --check     # exit 1 when one is stale
"""

import argparse
import json
import sys
from pathlib import Path

import yaml

from vlcp.config import SCHEMA_WORDS

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
REFERENCE = REPO / "config" / "REFERENCE.md"
PAPER = REPO / "docs" / "paper.md"
SLURM_README = REPO / "slurm" / "README.md"
SIZING_TABLE = (
    "<!-- the sizing table, written by `python -m vlcp.reference` from vlcp/sizing.py and the presets -->\n",
    "\n<!-- end of the sizing table -->",
)


def allowed_words(schema):
    """Type, choices and range of a schema, in words (items' choices for a list)."""
    words = []
    if "enum" in schema:
        words.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    elif "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        words.append(" or ".join(kinds))
    items = schema.get("items", {})
    if "enum" in items:
        words.append("items one of " + ", ".join(f"`{v}`" for v in items["enum"]))
    elif "type" in items:
        words.append(f"items {items['type']}")
    for keyword, template in SCHEMA_WORDS.items():
        if keyword in schema:
            words.append(template.format(f"`{schema[keyword]}`" if keyword == "pattern" else schema[keyword]))
    return ", ".join(words)


def cell(text):
    """Text for a markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def default_text(schema):
    if "default" not in schema:
        return ""
    return f"`{json.dumps(schema['default'], ensure_ascii=False)}`"


def rows(schema, prefix):
    """(key, default, allowed, description) of every leaf key under ``schema``, in schema order; an
    object with properties of its own is descended into (execution.<stage>, resources.<rule>)."""
    for name, sub in schema.get("properties", {}).items():
        key = f"{prefix}.{name}" if prefix else name
        if sub.get("type") == "object" and "properties" in sub:
            yield from rows(sub, key)
            continue
        description = sub.get("description", "")
        if sub.get("x-workflow"):
            description += " (read by the workflow, not a command-line option)"
        yield key, default_text(sub), allowed_words(sub), description


def render(schema):
    lines = [
        "# Configuration reference",
        "",
        "Generated from `config/schema.yaml` by `python -m vlcp.reference`; do not edit by hand.",
        "[README.md](README.md) is the guide to the sections.",
        "",
        cell(schema.get("description", "")),
        "",
    ]
    top = {k: v for k, v in schema["properties"].items() if not (v.get("type") == "object" and "properties" in v)}
    sections = {k: v for k, v in schema["properties"].items() if k not in top}
    header = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    lines += ["## Top level", "", *header]
    lines += [f"| `{k}` | {d} | {cell(a)} | {cell(m)} |" for k, d, a, m in rows({"properties": top}, "")]
    for name, section in sections.items():
        lines += ["", f"## {name}", ""]
        if section.get("description"):
            lines += [cell(section["description"]), ""]
        lines += header
        lines += [f"| `{k}` | {d} | {cell(a)} | {cell(m)} |" for k, d, a, m in rows(section, name)]
    return "\n".join(lines) + "\n"


def render_paper():
    from vlcp import paper

    return (
        "# The paper's numbers\n\n"
        "Generated from `vlcp/data/paper_numbers.csv` by `python -m vlcp.reference`; do not edit by hand. Top-1 %, "
        "mean ± std over three trials, as the paper reports them (the best test accuracy during training). A run "
        "that names its dataset (`paper_dataset`, set by the presets) gets these numbers beside its own rows in "
        "`summary.md` and `summary.csv`, with the difference and a verdict ([method.md](method.md), "
        "\"9. Aggregate\"). Methods by vlcp's names: `vlcp-prototype` is the paper's method (DCS), `vlcp-label`, "
        "`vlcp-label+keywords` and `vlcp-gpt` are L, L+FK and GGS; the other columns are the paper's baselines.\n\n"
        + paper.paper_tables()
    )


def render_sizing(readme):
    """slurm/README.md's text ``readme`` with its sizing table, between the SIZING_TABLE marks, made again."""
    from vlcp import sizing

    start, end = SIZING_TABLE
    before, rest = readme.split(start, 1)
    _, after = rest.split(end, 1)
    return before + start + sizing.table(sizing.TABLE_PRESETS) + end + after


def documents():
    """{path: the text it should hold} of every generated document."""
    return {
        REFERENCE: render(yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))),
        PAPER: render_paper(),
        SLURM_README: render_sizing(SLURM_README.read_text(encoding="utf-8")),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Write config/REFERENCE.md, docs/paper.md and slurm/README.md's sizing table."
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a document is not what its source gives")
    args = parser.parse_args(argv)
    for path, text in documents().items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                sys.exit(f"{path} is stale: run python -m vlcp.reference")
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
