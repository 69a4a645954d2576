"""`python -m vlcp plan`: the jobs a run still has to do and their GPU time, before it starts."""

import pytest

from conftest import REPO
from vlcp.plan import dataset_counts, main


@pytest.mark.workflow
def test_plan_of_the_demo_lists_its_jobs_and_gpu_time(tmp_path, capsys):
    main(["--configfile", str(REPO / "config" / "demo.yaml"), "--directory", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.startswith(
        "run 'demo': 10 classes, 400 train and 200 val files (checked by the index stage); IPC [1, 5]"
    )
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in out.splitlines() if line.startswith("| ")
    }
    # the dry run's own counts: a caption job per part of 5 classes, 2 sets x 2 IPCs with hard labels and
    # 'full' (5), the 4 sets with soft labels, a teacher, the cost table, the 9 folders gathered from the
    # parts' (captions; clusters, prototypes and the 2 sets at 2 IPCs), 61 jobs in all
    assert rows["caption"][0] == "2" and rows["gather"][0] == "9" and rows["total"][0] == "61"
    assert rows["evaluate"][0] == "5" and rows["soft_label"][0] == "4"
    assert rows["teacher"][0] == "1" and rows["teacher"][1].strip(" |") != "-", "the teacher is priced"
    assert rows["index"][1].strip(" |") == "-", "CPU rules have no GPU time"
    assert "GPU hours" in rows["total"][1]
    assert "this run's diffusion and captioner model(s) are tiny" in out
    # the demo's 20 steps, a checkpoint every 10: one (12.8 GiB at full size), and the pipeline (5.1 GiB)
    assert "Each fine-tune job needs up to 17.9 GiB of disk at once under results/demo/" in out
    assert "work/finetune/<job>/" in out and "finetune/<job>/" in out
    assert not (tmp_path / "results").exists(), "planning writes nothing"


def test_dataset_counts_are_the_images_on_disk(tmp_path):
    from vlcp.config import load_run_config

    for split, n in (("train", 3), ("val", 1)):
        for cls in ("cat", "dog"):
            folder = tmp_path / "pets" / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"{i}.jpg").write_bytes(b"")
            (folder / "notes.txt").write_text("not an image")
    mine = tmp_path / "pets.yaml"
    mine.write_text(f"run: pets\ndataset: {{root: {tmp_path / 'pets'}}}\n")
    config = load_run_config([mine], REPO)
    assert config["dataset"]["classes"] == [] and config["dataset"]["label_table"] == "folder"
    assert dataset_counts(config) == (2, 6, 2)


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    import pytest

    from vlcp.config import ConfigError, load_run_config

    bad = tmp_path / "bad.yaml"
    bad.write_text("run: x\ndataset:\n  root: [a, b\n  source: folder\n")
    with pytest.raises(ConfigError, match=rf"config file {bad}, line 4, column 9: not valid YAML: expected ',' or ']'"):
        load_run_config([bad], REPO)
    listed = tmp_path / "list.yaml"
    listed.write_text("- run: x\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_run_config([listed], REPO)


def test_soft_label_evaluations_and_the_teacher_are_priced_as_their_own_jobs():
    """Each job is priced by its own protocol; the expected ratios come from the protocols' epochs and images
    (Minimax's argument.py, RDED's scripts), not from the estimators' constants."""
    from vlcp.config import load_run_config
    from vlcp.plan import gpu_minutes

    config = load_run_config([REPO / "config" / "presets" / "imagenet1k.yaml"], REPO)
    counts = (1000, 1_281_167, 50_000)

    def job(rule, ipc):
        return (rule, {"method": "random", "ipc": ipc, "seed": "0", "model": "resnet18", "eval_seed": "0"})

    jobs = [
        ("teacher", {"architecture": "resnet18"}),
        job("soft_label", "10"),
        job("soft_label", "10"),
        job("soft_label", "50"),
        job("evaluate", "10"),
        job("evaluate", "50"),
    ]
    priced = gpu_minutes(config, counts, jobs)
    assert {rule: count for rule, (count, _) in priced.items()} == {"teacher": 1, "soft_label": 3, "evaluate": 2}
    soft10 = gpu_minutes(config, counts, [job("soft_label", "10")])["soft_label"][1]
    soft50 = gpu_minutes(config, counts, [job("soft_label", "50")])["soft_label"][1]
    hard10 = gpu_minutes(config, counts, [job("evaluate", "10")])["evaluate"][1]
    hard50 = priced["evaluate"][1] - hard10
    assert priced["soft_label"][1] == 2 * soft10 + soft50, "the rule's time is the sum of its jobs'"
    # RDED: the same 500 epochs over 5x the images, plus the same tests of the val split
    assert 4 < soft50 / soft10 < 5
    # Minimax: 1500 epochs over 5x the images against 2000 epochs: at most 5 x 1500 / 2000 = 3.75
    assert 3 < hard50 / hard10 < 3.75
    # a soft-label step is a teacher forward, the student's forward and backward and its extra forward (about
    # 5 forwards against a hard-label step's 3): 500 x 5 against 2000 x 3 is about 0.42
    assert 0.3 < soft10 / hard10 < 0.5
    # the teacher: 100 epochs over 1,281,167 images against 2000 epochs over 10,000: about 6.4
    assert 5 < priced["teacher"][1] / hard10 < 7


PRESET_TEACHERS = {
    "cifar10": (
        "cifar10_resnet18_modified.pth",
        ["RDED's CIFAR-10 ResNet-18", "93.86 %", "04_evaluation/RDED/data/pretrain_models/"],
    ),
    "cifar100": ("cifar100_resnet18_modified.pth", ["RDED's CIFAR-100 ResNet-18", "72.27 %"]),
    "imagenet1k": (
        "resnet18-f37072fd.pth",
        ["IMAGENET1K_V1", "69.76 %", "https://download.pytorch.org/models/resnet18-f37072fd.pth"],
    ),
}


@pytest.mark.workflow
@pytest.mark.parametrize("preset", sorted(PRESET_TEACHERS))
def test_the_soft_label_presets_name_the_authors_teacher_and_price_no_teacher_training(
    preset, tmp_path, capsys, monkeypatch
):
    from vlcp.config import ConfigError, load_run_config

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the presets name hub models, not in this cache

    config = load_run_config([REPO / "config" / "presets" / f"{preset}.yaml"], REPO)
    root = tmp_path / config["dataset"]["root"]
    for split in ("train", "val"):
        for cls in ("n01440764", "n01443537"):
            (root / split / cls).mkdir(parents=True)
            (root / split / cls / "0.png").write_bytes(b"")  # planned, never indexed
    argv = ["--configfile", str(REPO / "config" / "presets" / f"{preset}.yaml"), "--directory", str(tmp_path)]
    name, source = PRESET_TEACHERS[preset]
    with pytest.raises(ConfigError) as info:
        main(argv)
    message = str(info.value)
    assert message.startswith(f"Invalid config: evaluate.teacher = 'data/pretrain_models/{name}': no such file")
    assert all(words in message for words in source), message
    teacher = tmp_path / "data" / "pretrain_models" / name
    teacher.parent.mkdir()
    teacher.write_bytes(b"")  # the plan checks that the file is there; the rded jobs load it
    main(argv)
    rows = {line.split(" | ")[0].strip("| ") for line in capsys.readouterr().out.splitlines() if line.startswith("| ")}
    assert "soft_label" in rows and "teacher" not in rows, "the authors' teacher is used, none is trained"


# Mistakes a newcomer makes, each with words the one-line message must hold: the plan and the workflow
# give the same message (one function behind both), naming the key or the file.
MISTAKES = {
    "misspelled top-level key": ("clustre: {}\n", ["unknown key(s) 'clustre' at the top level"]),
    "misspelled stage key": ("cluster: {n_neigbors: 5}\n", ["'n_neigbors'", "under cluster"]),
    "value out of range": ("cluster: {contamination: 0.9}\n", ["cluster.contamination = 0.9"]),
    "missing dataset root": (
        "dataset: {root: nowhere}\n",
        ["dataset.root = 'nowhere'", "nowhere/train is not a folder"],
    ),
    "root without val/": ("dataset: {root: noval}\n", ["dataset.root = 'noval'", "val"]),
    "class not on disk": ("dataset: {root: data, classes: [cat, cow]}\n", ["cow"]),
    "empty class folder": ("dataset: {root: empty}\n", ["dataset.root = 'empty'", "no file under empty/val: cat"]),
    "label table not a file": (
        "dataset: {root: data, label_table: labels.tsv}\n",
        ["dataset.label_table = 'labels.tsv' is not a file"],
    ),
    "missing teacher file": (
        "dataset: {root: data}\nevaluate: {protocols: [rded], teacher: t.pth}\n",
        ["evaluate.teacher = 't.pth': no such file"],
    ),
    "results under a file": (
        "dataset: {root: data}\nresults_dir: data/train/cat/0.png/results\n",
        ["results_dir = 'data/train/cat/0.png/results'", "is a file, not a folder"],
    ),
    "misspelled preset": (
        None,
        ["config file", "imagenete.yaml: No such file or directory", "did you mean", "config/presets/imagenette.yaml?"],
    ),
    "missing model folder": (
        "dataset: {root: data}\nmodels: {diffusion: ./sd15, captioner: tiny}\n",
        ["models.diffusion = './sd15': no such folder"],
    ),
}


@pytest.mark.workflow
@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_the_plan_and_the_workflow_give_the_same_one_line_message(mistake, tmp_path):
    from conftest import snakemake
    from vlcp.errors import VlcpError

    for split in ("train", "val"):
        (tmp_path / "data" / split / "cat").mkdir(parents=True)
        (tmp_path / "data" / split / "cat" / "0.png").write_bytes(b"")
    (tmp_path / "noval" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "cat" / "0.png").write_bytes(b"")
    (tmp_path / "empty" / "val" / "cat").mkdir(parents=True)
    text, words = MISTAKES[mistake]
    config = tmp_path / "mine.yaml"
    if text is None:  # a preset's name mistyped
        config = REPO / "config" / "presets" / "imagenete.yaml"
    else:
        tiny = "" if "models:" in text else "models: {diffusion: tiny, captioner: tiny}\n"  # none in this cache
        root = "" if "dataset:" in text else "dataset: {root: data}\n"  # one mistake: the dataset is there
        config.write_text("run: mine\n" + tiny + root + text)
    with pytest.raises(VlcpError) as info:
        main(["--configfile", str(config), "--directory", str(tmp_path)])
    message = str(info.value)
    assert "\n" not in message and all(w in message for w in words), message
    if text is None:
        return  # Snakemake reads the config files itself before the workflow's code runs: its own message
    workflow = snakemake(tmp_path, "-n", "--configfile", str(config), check=False)
    assert workflow.returncode != 0 and message in workflow.stdout + workflow.stderr, (message, workflow.stdout[-1500:])
    # the reason alone, as the plan says it: no Snakemake error wrapping, no Python frame
    said = workflow.stdout + workflow.stderr
    assert "Error in file" not in said and "Traceback" not in said and 'File "' not in said, said[-1500:]


@pytest.mark.workflow
def test_every_problem_of_a_config_is_reported_at_once_by_both(tmp_path):
    """A missing dataset root and a hub model not in the cache (HF_HUB_OFFLINE=1) are one round trip."""
    from conftest import snakemake
    from vlcp.config import ConfigError

    config = tmp_path / "mine.yaml"
    config.write_text(
        "run: mine\ndataset: {root: nowhere}\nmodels: {diffusion: someone/sd-not-here, captioner: tiny}\n"
    )
    with pytest.raises(ConfigError) as info:
        main(["--configfile", str(config), "--directory", str(tmp_path)])
    lines = str(info.value).splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("Invalid config: models.diffusion = 'someone/sd-not-here' is not in the local")
    assert lines[1].startswith("Dataset error (dataset.root = 'nowhere'): nowhere/train is not a folder")
    workflow = snakemake(tmp_path, "-n", "--configfile", str(config), check=False)
    said = workflow.stdout + workflow.stderr
    assert workflow.returncode != 0 and all(line in said.splitlines() for line in lines), said[-1500:]


@pytest.mark.workflow
def test_an_ipc_larger_than_a_class_is_said_by_both_before_any_job(tmp_path, capsys):
    from conftest import snakemake

    for split, cls, n in (("train", "cat", 3), ("train", "dog", 8), ("val", "cat", 1), ("val", "dog", 1)):
        for i in range(n):
            (tmp_path / "data" / split / cls).mkdir(parents=True, exist_ok=True)
            (tmp_path / "data" / split / cls / f"{i}.png").write_bytes(b"")
    config = tmp_path / "mine.yaml"
    config.write_text("run: mine\ndataset: {root: data}\nmodels: {diffusion: tiny, captioner: tiny}\nipc: [1, 5]\n")
    main(["--configfile", str(config), "--directory", str(tmp_path)])
    out = capsys.readouterr().out
    warning = next(line for line in out.splitlines() if line.startswith("Warning:"))
    assert warning.startswith("Warning: ipc 5 is more than the train files of 1 of 2 class(es): cat (3)."), warning
    assert "random take(s) all of such a class's images (a set of 3, not 5)" in warning
    assert "vlcp cannot make 5 clusters of 3 latents" in warning
    workflow = snakemake(tmp_path, "-n", "--configfile", str(config))
    assert warning in workflow.stderr.splitlines(), workflow.stderr[-1500:]
