"""Run every benchmark in turn with its defaults (CPU: tiny models; add --full on a GPU for full-size ones).

python bench/run.py [--full]
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = [
    "dag.py",
    "prototypes.py",
    "evaluate.py",
    "soft_label.py",
    "whole_split_memory.py",
    "caption.py",
    "synthesize.py",
    "finetune.py",
]
FULL_CAPABLE = {"soft_label.py", "caption.py", "synthesize.py", "finetune.py"}


def main():
    full = "--full" in sys.argv[1:]
    for script in SCRIPTS:
        print(f"\n== {script} ==", flush=True)
        extra = ["--full"] if full and script in FULL_CAPABLE else []
        subprocess.run([sys.executable, str(HERE / script), *extra], check=True)


if __name__ == "__main__":
    main()
