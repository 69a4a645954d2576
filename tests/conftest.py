import contextlib
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

# vlcp.config (jsonschema) and vlcp.plan are imported where they are used, so that the GPU suite collects
# on a node that has neither jsonschema nor Snakemake (bench/gpu.py).
os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]


def deep_update(base, override):
    """``base`` updated by ``override`` the way Snakemake merges config files (lists replaced); a new dict."""
    from vlcp.config import merge_config

    return merge_config(copy.deepcopy(base), copy.deepcopy(override))


def load_yaml(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


# Session fixtures that run the workflow: a test that uses one starts Snakemake.
SNAKEMAKE_FIXTURES = {"demo_run", "folder_run", "killed_folder_run", "shared_run", "beyond_run"}


def starts_snakemake(args):
    words = [str(w) for w in args] if isinstance(args, (list, tuple)) else str(args).split()
    return any(Path(word).name == "snakemake" for word in words)


@pytest.fixture(autouse=True)
def snakemake_only_in_workflow_tests(request, monkeypatch):
    """The tiers are honest: a test that starts Snakemake, itself or through a fixture, must be marked
    ``workflow``, so that the fast path (-m "not workflow and not slow") runs none."""
    if request.node.get_closest_marker("workflow"):
        return
    used = sorted(SNAKEMAKE_FIXTURES & set(request.fixturenames))
    assert not used, f"{request.node.nodeid} uses {used}, which run Snakemake: mark it @pytest.mark.workflow"
    original = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        if starts_snakemake(args):
            raise AssertionError(f"{request.node.nodeid} starts Snakemake: mark it @pytest.mark.workflow")
        original(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)


def cluster_prefix():
    """Run inside the test cluster's namespace when it is up: the SLURM plugin asks the controller
    for its configuration at every start, and waits 10 s when slurm-client is installed but no
    controller answers."""
    base = os.environ.get("VLCP_SLURM_BASE")
    return [f"{base}/in-cluster.sh"] if base and os.path.exists(f"{base}/in-cluster.sh") else []


def cluster_command(cmd):
    """``cmd`` to run inside the test cluster's namespace when it is up (``cluster_prefix``), once."""
    prefix = cluster_prefix()
    return cmd if not prefix or cmd[: len(prefix)] == prefix else [*prefix, *cmd]


@pytest.fixture(autouse=True)
def plans_in_the_test_cluster(monkeypatch):
    """``vlcp plan``'s dry runs start Snakemake too: inside the test cluster's namespace when it is up, as
    ``snakemake`` does (outside it each start waits about 10 s for the controller)."""
    if not cluster_prefix():
        return
    import importlib

    plan = importlib.import_module("vlcp.plan")
    original = plan.snakemake_command
    monkeypatch.setattr(plan, "snakemake_command", lambda *args: cluster_command(original(*args)))


def snakemake(workdir, *args, check=True, offline=True):
    """Run this repository's workflow with ``workdir`` as working directory; return the CompletedProcess.
    ``offline=False`` lets the plan accept hub ids that are not in the local cache (nothing is downloaded
    while planning), for configs of real models."""
    from vlcp.plan import snakemake_command

    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        HF_HUB_OFFLINE="1" if offline else "0",
    )
    cmd = cluster_command(snakemake_command(workdir, *args))
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        output = result.stdout + result.stderr
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}{failed_logs(workdir, output)}")
    return result


def failed_logs(workdir, output):
    """The end of the log of every job that a failed Snakemake run names as failed: what CI shows of it."""
    import re

    text = ""
    for log in dict.fromkeys(re.findall(r"^\s+log: (\S+) \(check log file", output, re.M)):
        path = Path(workdir) / log
        tail = path.read_text(errors="replace")[-4000:] if path.is_file() else "(not there)"
        text += f"\n--- the end of {log} ---\n{tail}"
    return text


@pytest.fixture(scope="session")
def repo():
    return REPO


DEMO_CONFIG = REPO / "config" / "demo.yaml"
# The demo without its soft-label evaluations, the teacher and 'full': for the tests that run the demo again
# from scratch to check something else (reruns, parts of classes), where those jobs would only add minutes.
HARD_LABELS_ONLY = {"methods": ["vlcp", "random"], "evaluate": {"protocols": ["minimax"]}}
# ... with 10 training epochs per evaluation, not 100: for runs that need finished jobs, not accurate ones
QUICK_EVALUATION = {
    **HARD_LABELS_ONLY,
    "evaluate": {**HARD_LABELS_ONLY["evaluate"], "epochs": [{"max_ipc": 10, "epochs": 10}]},
}


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The demo workflow run once from scratch; tests read it and must not change it."""
    workdir = tmp_path_factory.mktemp("demo-run")
    done = snakemake(workdir, "--cores", "2", "--configfile", str(DEMO_CONFIG))
    (tmp_path_factory.getbasetemp() / "demo-console.txt").write_text(done.stdout + done.stderr)
    return workdir


@pytest.fixture(scope="session")
def demo_console(demo_run, tmp_path_factory):
    """What the demo's run printed, stdout and stderr."""
    return (tmp_path_factory.getbasetemp() / "demo-console.txt").read_text()


# What two runs of the same config may write differently, by design: every other file under
# results/<run>/ must be byte-identical (tests/test_reruns.py, tests/test_slurm.py).
VOLATILE = {
    "*provenance.json": "a provenance record holds the time it was written ('created')",
    "logs/*": "job logs: timings, progress bars, a resumed job's notes",
    "benchmarks/*": "Snakemake's measurements of each job: wall and CPU time, memory",
    "cost.*": "the run's cost, from the benchmarks",
    "work/*": "what killed jobs keep aside to resume from (partial captions, checkpoints, finished images); "
    "not a result",
    "*.snakemake_timestamp": "Snakemake's empty mark in a folder output; which folders are outputs of their own "
    "depends on how jobs are cut (classes_per_job)",
}


def output_hashes(run):
    """sha256 of every file under ``run`` (results/<run>/) but the VOLATILE ones, by path relative to it."""
    import fnmatch
    import hashlib

    hashes = {}
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        name = path.relative_to(run).as_posix()
        if not any(fnmatch.fnmatch(name, pattern) for pattern in VOLATILE):
            hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def dry_run_jobs(workdir, *args):
    """The jobs ``snakemake -n`` would run, as a set of (rule, 'key=value, ...') pairs."""
    from vlcp.plan import parse_dry_run

    result = snakemake(workdir, "-n", *args)
    return {
        (rule, ", ".join(f"{k}={v}" for k, v in wildcards.items())) for rule, wildcards in parse_dry_run(result.stdout)
    }


def write_folder_demo(root):
    """The demo's digits written once as an ImageFolder at ``root`` (the demo config's numbers), as a user's
    own data would be: a run with dataset.source folder reads them."""
    demo = load_yaml(DEMO_CONFIG)["demo"]
    command = [sys.executable, "-m", "vlcp", "demo_data", str(root), "--train-per-class", str(demo["train_per_class"])]
    command += ["--val-per-class", str(demo["val_per_class"]), "--image-size", str(demo["image_size"])]
    subprocess.run([*command, "--seed", str(demo["seed"])], check=True)


def folder_source(root):
    """The config section that reads the digits written by ``write_folder_demo(root)``."""
    return {"dataset": {"source": "folder", "root": str(root), "label_table": f"{root}/labels.tsv"}}


def write_config(path, override):
    """The demo's config with ``override`` merged over it, written to ``path``."""
    path.write_text(yaml.safe_dump(deep_update(load_yaml(DEMO_CONFIG), override)))
    return path


FAULT = Path(__file__).parent / "fault"


@contextlib.contextmanager
def faults(**injected):
    """Every job of runs inside gets tests/fault/sitecustomize.py with ``injected`` (VLCP_KILL=...) set."""
    env = {**injected, "PYTHONPATH": os.pathsep.join([str(FAULT), str(REPO)])}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value


# The folder run's three interruptions, in order: every job of the stage is SIGKILLed part-way (after
# the N-th call of the function), the rest of the run goes on (--keep-going), and the next run resumes it.
KILLS = (
    ("caption", "vlcp.caption:Progress.append:1"),  # after each job's first batch of 16 captions
    ("finetune", "vlcp.finetune:save_checkpoint:1"),  # after checkpoint-10 of 20 steps
    ("synthesize", "vlcp.synthesize:resize_for_evaluation:2"),  # after a class's first image at IPC 5
)


def observe(run):
    """What a test of the interruptions needs to know of ``run`` (results/demo/) at one moment."""

    def logs(stage, text):
        return sorted(p.stem for p in (run / "logs" / stage).rglob("*.log") if text in p.read_text(errors="replace"))

    finetune_log = run / "logs" / "finetune" / "shared.log"
    return {
        "captions": sorted(p.name for p in (run / "captions").glob("*.jsonl")),
        "caption batches kept": len(list((run / "work" / "captions").glob("*/batches.jsonl"))),
        "caption logs": len(list((run / "logs" / "caption").glob("*.log"))),
        "captions resumed": logs("caption", "resuming: 16 of 40 images already captioned"),
        "finetune": (run / "finetune" / "shared").exists(),
        "checkpoint-10": (run / "work" / "finetune" / "shared" / "checkpoint-10").is_dir(),
        "finetune resumed": finetune_log.is_file()
        and "resuming from checkpoint-10 (step 10 of 20)" in finetune_log.read_text(),
        "images kept": len(list((run / "work" / "synthesize").rglob("*.png"))),
        "synthesis resumed": logs("synthesize", "resuming: 1 of 5 images already made"),
    }


@pytest.fixture(scope="session")
def killed_folder_run(tmp_path_factory):
    """The demo as a user would run their own data: the digits written once by ``python -m vlcp demo_data``
    and read as an ImageFolder (dataset.source: folder), a job per class (the demo's config runs parts of 5
    classes), hard labels only with 10 epochs (QUICK_EVALUATION). The run is killed three times (KILLS),
    each time resumed by the same command, then finished by it: (working folder, config, what ``observe``
    saw after each kill and at the end)."""
    workdir = tmp_path_factory.mktemp("folder-run")
    write_folder_demo(workdir / "data")
    config = write_config(workdir / "base.yaml", {**QUICK_EVALUATION, **folder_source("data"), "classes_per_job": 1})
    run, seen = workdir / "results" / "demo", {}
    for stage, spec in KILLS:
        with faults(VLCP_KILL=spec):
            killed = snakemake(workdir, "--cores", "2", "--keep-going", "--configfile", str(config), check=False)
        seen[stage] = {"returncode": killed.returncode, **observe(run)}
    snakemake(workdir, "--cores", "2", "--configfile", str(config))
    seen["finished"] = observe(run)
    return workdir, config, seen


@pytest.fixture(scope="session")
def folder_run(killed_folder_run):
    """The finished folder run (``killed_folder_run``): (working folder, config)."""
    return killed_folder_run[:2]


def by_class(hashes):
    """``output_hashes`` with the parts' folders of the index and the latents seen as one folder each
    (parts/<folder>/<part>/<class file> as <folder>/<class file>), whatever the parts; the other parts'
    folders are in the folders gathered from them."""
    seen = {}
    for name, digest in hashes.items():
        if name.startswith(("parts/index/", "parts/latents/")):
            *folder, _, file = name.removeprefix("parts/").split("/")
            seen["/".join([*folder, file])] = digest
        elif not name.startswith("parts/"):
            seen[name] = digest
    return seen


def part_file(run, folder, name):
    """The file ``name`` (<class><suffix>) that a per-class stage wrote in its part's folder,
    parts/<folder>/<part>/ under ``run`` (results/<run>/), whichever part holds the class."""
    found = sorted((run / "parts" / folder).glob(f"*/{name}"))
    assert len(found) == 1, f"{name} in {len(found)} parts of {folder}"
    return found[0]


def jobs_by_rule(jobs):
    counts = {}
    for rule, _ in jobs:
        counts[rule] = counts.get(rule, 0) + 1
    return counts


def copy_run(workdir, tmp_path):
    """A copy of a finished run, with modification times kept so Snakemake sees it as finished."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy, symlinks=True, copy_function=shutil.copy2)
    return copy


PER_CLASS_RULES = ("index", "caption", "encode", "cluster", "text_prototype", "select")


def jobs_after_adding_an_image_to_three(run, tmp_path):
    """A copy of ``run`` = (workdir, config), a run of ``folder_source("data")``, with one image more in
    train/three, and the jobs its dry run lists."""
    from PIL import Image

    workdir, config = run
    copy = copy_run(workdir, tmp_path)
    Image.new("L", (32, 32), 128).save(copy / "data" / "train" / "three" / "9999.png")
    return copy, dry_run_jobs(copy, "--configfile", str(config))


# --- the tiny-weights remake, in the background ---

# The remake of the shipped tiny weights (test_tiny_models.py) is 5 minutes of training that needs no other
# test. When it is collected it starts with the session, at the lowest CPU priority, so it runs on the core
# that single-threaded tests and dry runs leave idle; its test runs last and waits for what is left.
REMAKE_TEST = "test_the_shipped_digit_weights_are_what_tiny_pretrain_makes"
REMAKE = pytest.StashKey()


def pytest_collection_modifyitems(config, items):
    """The remake's test goes last, so the remake has the whole session to run in the background."""
    items.sort(key=lambda item: item.name == REMAKE_TEST)  # stable: the rest keep their order


def lowest_priority():
    """The calling process at the lowest CPU priority, in a session of its own (start_new_session). With the
    kernel's autogroups (sched_autogroup_enabled), a nice value only ranks processes of one session: the
    jobs that SLURM, or a test's own session, starts would share the CPU equally with a niced process of
    the suite's session. The session's group is niced too, so every other process comes first."""
    os.nice(19)
    try:
        Path("/proc/self/autogroup").write_text("19")
    except OSError:
        pass  # no autogroups: the nice value alone ranks it


def pytest_collection_finish(session):
    config = session.config  # session.items: what runs, after -m and -k have deselected
    if config.option.collectonly or not any(item.name == REMAKE_TEST for item in session.items):
        return
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="vlcp-tiny-remake-"))
    with open(folder / "log.txt", "w") as log:
        command = [sys.executable, "-m", "vlcp", "tiny_pretrain", str(folder / "weights")]
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lowest_priority,
            # its OpenMP threads sleep at a barrier instead of spinning away the little CPU they get;
            # the arithmetic, and so the bit-for-bit comparison, is the same
            env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"),
        )
    config.stash[REMAKE] = (process, folder)


def pytest_sessionfinish(session):
    started = session.config.stash.get(REMAKE, None)
    if started:
        import shutil

        process, folder = started
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def tiny_remake(request):
    """The folder of the weights ``python -m vlcp tiny_pretrain`` made again (started with the session)."""
    started = request.config.stash.get(REMAKE, None)
    assert started, f"the remake starts when {REMAKE_TEST} is collected"
    process, folder = started
    process.wait()
    log = (folder / "log.txt").read_text(errors="replace")
    assert process.returncode == 0, log[-3000:]
    return folder / "weights"


# --- the stage tests' small world (test_caption, test_encode, test_finetune) ---

HERE = Path(__file__).parent
STAGE_CLASSES = ("three", "seven")


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Two demo classes indexed, and both tiny models saved."""
    from vlcp import contract, demo_data, tiny_models
    from vlcp.index import index_class

    root = tmp_path_factory.mktemp("stages")
    data = root / "data"
    demo_data.write_demo(data, train_per_class=20, val_per_class=2, image_size=32, seed=0)
    for cls in STAGE_CLASSES:
        records, _ = index_class(data, "train", cls, demo_data.LABELS[cls], [".png"], 10**6)
        contract.write_index(root / "index" / f"{cls}.jsonl", records)
    tiny_models.save_tiny_stable_diffusion(root / "sd", seed=0, resolution=32)
    tiny_models.save_tiny_llava(root / "llava", seed=0)
    return root


def wrapped(module, function, args, count_file, kill_after=0):
    cmd = [
        sys.executable,
        str(HERE / "killed_run.py"),
        module,
        function,
        str(kill_after),
        str(count_file),
        "--",
        *map(str, args),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(HERE.parent))
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def calls(count_file):
    return len(Path(count_file).read_text().splitlines()) if Path(count_file).exists() else 0


def write_class_latents(path, n, seed, flipped=True):
    """A class's latents file of ``n`` random latents (and their flipped twins), as the encode stage writes it."""
    import torch

    from vlcp import contract

    generator = torch.Generator().manual_seed(seed)
    tensors = {"latents": torch.randn(n, 4, 8, 8, generator=generator)}
    if flipped:
        tensors["latents_flipped"] = torch.randn(n, 4, 8, 8, generator=generator)
    images = [f"train/c{seed}/{i}.png" for i in range(n)]
    contract.write_latents(path, tensors, images)
    return tensors, images


def minimax_settings(**changes):
    """The Minimax protocol's training settings at 32 px on the CPU (vlcp.evaluate.train_and_test), with
    ``changes`` (epochs, batch size, test cadence) of the test."""
    settings = {
        "learning_rate": 0.01,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "milestones": [2 / 3, 5 / 6],
        "gamma": 0.2,
        "rrc_scale_min": 0.5,
        "color_jitter": 0.4,
        "lighting": 0.1,
        "cutmix_beta": 1.0,
        "input_size": 32,
        "norm": "instance",
        "precision": "float32",
    }
    return {**settings, **changes}
