"""The full-width tier (pytest -m fullsize): the workflow itself, from raw images to summary.md, on SD v1.5's
and LLaVA-1.5-7B's architectures (random weights) saved in their hub repositories' file layouts; and the
GPU command rehearsed on the CPU in an environment set up like the GPU node's.

Every GPU rule runs once at full width on 2 classes of 6 digits at 128 px (tests/fullsize.yaml): caption,
encode, finetune (EMA on, stopped by Ctrl-C after its one checkpoint, then resumed by the same command),
synthesize (VLCP's set, a set of the best of 2 candidates, D4M's), evaluate, soft_label and teacher.
With ``VLCP_FULLSIZE_REPORT=FILE`` the run's per-rule wall time and peak memory are written to FILE
(bench/fullsize.py puts them in bench/RESULTS.md).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, cluster_command, failed_logs, part_file, snakemake
from vlcp import contract, cost, full_models
from vlcp.cli import peak_in_log

pytestmark = [pytest.mark.fullsize, pytest.mark.workflow]

CONFIG = REPO / "tests" / "fullsize.yaml"
RUN = "results/fullsize"
CHECKPOINT = f"{RUN}/work/finetune/shared/checkpoint-1/vlcp-step.json"


# Disk the tier needs at once: the models in their hub layouts (9.6 GB, plain and fp16 files), the fine-tune's
# checkpoint (14 GB: U-Net, AdamW moments, EMA) and the run's other files (5 GB).
DISK_GB = {"models": 10, "run": 20}


def check_disk(folder, need_gb):
    """Fail at once, saying so, where a job would fail later on a full disk (one line in its log)."""
    import shutil

    free = shutil.disk_usage(folder).free / 1e9
    if free < need_gb:
        pytest.fail(
            f"the fullsize tier needs about {need_gb} GB free under {folder}, and {free:.1f} GB are; "
            "free some (old pytest sessions stay under /tmp/pytest-of-<user>/), or set VLCP_FULLSIZE_MODELS "
            "to a folder of the models saved by an earlier run"
        )


@pytest.fixture(scope="session")
def hub_models(tmp_path_factory):
    """SD v1.5 and LLaVA-1.5-7B (language model cut to 2 layers) in their hub layouts, saved once."""
    root = Path(os.environ.get("VLCP_FULLSIZE_MODELS") or tmp_path_factory.mktemp("hub-models"))
    root.mkdir(parents=True, exist_ok=True)
    saved = (root / full_models.SD_REPO).is_dir() and any(root.glob(f"{full_models.LLAVA_REPO}*"))
    check_disk(root, DISK_GB["run"] + (0 if saved else DISK_GB["models"]))
    return full_models.hub_models(root, llava_layers=2)


def workflow_command(workdir, models_config):
    from vlcp.plan import snakemake_command

    args = ["--cores", "2", "--resources", "mem_mb=20000", "--configfile", str(CONFIG), str(models_config)]
    return cluster_command(snakemake_command(workdir, *args))


@pytest.fixture(scope="session")
def fullsize_run(tmp_path_factory, hub_models):
    """The workflow run at full width: interrupted with Ctrl-C once the fine-tune has written its
    checkpoint, then finished by the same command."""
    workdir = tmp_path_factory.mktemp("fullsize-run")
    sd, llava = hub_models
    models_config = workdir / "models.yaml"
    models_config.write_text(yaml.safe_dump({"models": {"diffusion": str(sd), "captioner": str(llava)}}))
    command = workflow_command(workdir, models_config)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", HF_HUB_OFFLINE="1")
    # as from a terminal: Ctrl-C reaches Snakemake even when the suite itself was started in the background,
    # whose commands inherit an ignored SIGINT (and Python then never raises KeyboardInterrupt)
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    while first.poll() is None and not (workdir / CHECKPOINT).is_file():
        time.sleep(1)
    if first.poll() is not None:
        output = first.stdout.read()
        pytest.fail(f"the first run ended before the fine-tune's checkpoint:\n{output}{failed_logs(workdir, output)}")
    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C in the terminal
    interrupted = first.communicate(timeout=300)[0]
    assert first.returncode != 0, interrupted
    resumed = time.time()
    finished = snakemake(workdir, *command[command.index("--cores") :])
    report = os.environ.get("VLCP_FULLSIZE_REPORT")
    if report:
        logs = workdir / RUN / "logs"
        peaks = {p.relative_to(logs).as_posix(): peak_in_log(p) for p in sorted(logs.rglob("*.log"))}
        measured = cost.read_benchmarks(workdir / RUN / "benchmarks")
        jobs = [{k: v for k, v in r.items() if k != "wildcards"} for r in measured]
        Path(report).write_text(
            json.dumps({"wall_seconds": round(time.time() - resumed), "jobs": jobs, "peaks": peaks}, indent=1)
        )
    return workdir, interrupted, finished


def test_every_gpu_rule_ran_at_full_width_from_raw_images_to_the_summary(fullsize_run, hub_models):
    workdir, _, finished = fullsize_run
    run = workdir / RUN
    ran = {p.name for p in (run / "benchmarks").iterdir()}
    gpu_rules = {"caption", "encode", "finetune", "synthesize", "d4m_synthesize", "evaluate", "soft_label", "teacher"}
    assert gpu_rules <= ran, f"rules that did not run: {gpu_rules - ran}"
    text = (run / "summary.md").read_text()
    for method in ("vlcp-prototype", "vlcp-prototype-k2", "d4m"):
        assert f"| {method} |" in text, f"{method} has no row in summary.md"
    # the fine-tuned U-Net is SD v1.5's, trained: same shapes, other weights
    from safetensors import safe_open

    name = "unet/diffusion_pytorch_model.safetensors"
    with safe_open(run / "finetune" / "shared" / name, "pt") as tuned, safe_open(hub_models[0] / name, "pt") as base:
        key = "conv_in.weight"
        assert tuned.get_tensor(key).shape == base.get_tensor(key).shape == (320, 4, 3, 3)
        assert not (tuned.get_tensor(key) == base.get_tensor(key)).all()
    # every image at the evaluation size, from a 16 x 16 x 4 latent (128 px)
    sets = [run / "distilled" / m / "ipc2" / "seed0" / "seven" for m in ("vlcp-prototype", "vlcp-prototype-k2", "d4m")]
    assert all(len(list(s.glob("*.png"))) == 2 for s in sets)
    latents, _ = contract.read_latents(part_file(run, "latents", "seven.safetensors"))
    assert latents["latents"].shape == (6, 4, 16, 16)
    # D4M's sets: the base model's fp16 files (models.diffusion_variant), its safety checker run (D4M's way)
    record = json.loads((run / "distilled" / "d4m" / "ipc2" / "seed0" / "seven" / "provenance.json").read_text())
    assert record["settings"]["variant"] == "fp16" and record["settings"]["safety_checker"] is True


def test_the_fine_tune_resumed_from_its_checkpoint_and_saved_the_pipeline_last(fullsize_run):
    workdir, interrupted, _ = fullsize_run
    log = (workdir / RUN / "logs" / "finetune" / "shared.log").read_text()
    assert "resuming from checkpoint-1 (step 1 of 2)" in log, log[-2000:]
    assert not (workdir / RUN / "work" / "finetune" / "shared").exists(), "a finished job's checkpoints are removed"
    record = json.loads((workdir / RUN / "finetune" / "shared" / "provenance.json").read_text())
    assert record["settings"]["use_ema"] is True and record["settings"]["steps"] == 2


def test_captions_come_from_the_hub_layout_llava(fullsize_run, hub_models):
    workdir, _, _ = fullsize_run
    record = json.loads((workdir / RUN / "captions" / "three.jsonl.provenance.json").read_text())
    assert record["settings"]["model"] == str(hub_models[1])
    rows = [json.loads(line) for line in (workdir / RUN / "captions" / "three.jsonl").read_text().splitlines()]
    assert len(rows) == 6


def test_the_gpu_command_runs_in_an_environment_like_the_nodes(tmp_path, hub_models):
    """bench/gpu.py rehearsed on the CPU as it would run on a GPU node: from the checkout, in a Python
    without diffusers or jsonschema and with transformers 5.17, the project's needs installed from a wheel
    folder ahead of the machine's own; every part finishes and leaves its figures."""
    env_dir, wheels, figures = tmp_path / "node", tmp_path / "wheels", tmp_path / "figures.jsonl"
    built = subprocess.run(
        [sys.executable, str(REPO / "bench" / "node_env.py"), str(env_dir), "--wheels", str(wheels)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    python = str(env_dir / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "VLCP_FULLSIZE_MODELS")}
    probe = "import importlib.util as u, transformers as t; print(t.__version__, u.find_spec('diffusers'))"
    probe += "; print(u.find_spec('jsonschema'))"
    before = subprocess.run([python, "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert before.stdout.split() == ["5.17.0", "None", "None"], before.stdout + before.stderr
    command = [python, "bench/gpu.py", "--device", "cpu", "--wheels", str(wheels), "--site", str(tmp_path / "site")]
    command += ["--models", str(hub_models[0].parent), "--figures", str(figures)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    rows = [json.loads(line) for line in figures.read_text().splitlines()]
    run = rows[0]
    assert run["stage"] == "run" and run["gpu"] == "none"
    for name, version in (("transformers", "5.24.0"), ("diffusers", "0.42.1"), ("jsonschema", "4.26.0")):
        assert run[name].startswith(f"{version} ({tmp_path / 'site'}"), f"{name}: {run[name]}"
    measured = {r["stage"] for r in rows if "seconds" in r and "skipped" not in r}
    assert {"models", "encode", "synthesize", "caption", "evaluate", "finetune"} <= measured, rows
    assert rows[-1]["stage"] == "outcome" and rows[-1]["pytest"] == "exit 0"
    assert "| stage |" in result.stdout and "transformers 5.24.0" in result.stdout, "the summary"
