"""``python -m vlcp STAGE [ARGS]``: run one stage's command-line entry (``python -m vlcp STAGE -h`` for its
arguments)."""

import importlib
import sys

from vlcp.cli import run

STAGES = (
    "demo_data",
    "tiny_models",
    "tiny_pretrain",
    "index",
    "caption",
    "finetune",
    "encode",
    "cluster",
    "d4m",
    "text_prototype",
    "synthesize",
    "select",
    "evaluate",
    "teacher",
    "rded",
    "aggregate",
    "cost",
    "plan",
    "regenerate",
    "export",
    "external",
    "gather",
)


USAGE = (
    f"usage: python -m vlcp STAGE [ARGS]  (python -m vlcp STAGE -h for a stage's arguments)\nSTAGE: {', '.join(STAGES)}"
)


def main():
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print(USAGE)
        return
    if len(sys.argv) < 2 or sys.argv[1] not in STAGES:
        sys.exit(USAGE)
    stage = importlib.import_module(f"vlcp.{sys.argv[1]}")
    sys.argv[0] = f"python -m vlcp {sys.argv[1]}"  # argparse names the stage in its help, not __main__.py
    run(lambda: stage.main(sys.argv[2:]))


if __name__ == "__main__":
    main()
