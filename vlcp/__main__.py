"""``python -m vlcp STAGE [ARGS]``: run one stage's command-line entry (``python -m vlcp STAGE -h`` for its arguments)."""

import importlib
import sys

from vlcp.cli import run

STAGES = (
    "demo_data", "tiny_models", "index", "caption", "finetune", "encode", "cluster", "text_prototype",
    "synthesize", "select", "evaluate", "aggregate",
)


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in STAGES:
        sys.exit(f"usage: python -m vlcp STAGE [ARGS], STAGE one of: {', '.join(STAGES)}")
    stage = importlib.import_module(f"vlcp.{sys.argv[1]}")
    run(lambda: stage.main(sys.argv[2:]))


if __name__ == "__main__":
    main()
