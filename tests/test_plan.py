"""`python -m vlcp plan`: the jobs a run still has to do and their GPU time, before it starts."""

from conftest import REPO

from vlcp.plan import dataset_counts, main


def test_plan_of_the_demo_lists_its_jobs_and_gpu_time(tmp_path, capsys):
    main(["--configfile", str(REPO / "config" / "demo.yaml"), "--directory", str(tmp_path)])
    out = capsys.readouterr().out
    assert out.startswith("run 'demo': 10 classes, 400 train and 200 val images; IPC [1, 5]")
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in out.splitlines() if line.startswith("| ")}
    # the dry run's own counts: a caption job per class, 2 sets x 2 IPCs evaluated, 140 jobs in all
    assert rows["caption"][0] == "10" and rows["evaluate"][0] == "4" and rows["total"][0] == "140"
    assert rows["index"][1].strip(" |") == "-", "CPU rules have no GPU time"
    assert "GPU hours" in rows["total"][1]
    assert "this run's diffusion and captioner model(s) are tiny" in out
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
