"""The config schema: every preset passes, bad values fail with a message naming the key."""

from pathlib import Path

import jsonschema
import pytest
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO, deep_update, load_yaml, snakemake
from vlcp.config import (
    ConfigError,
    check_config,
    describe_validation_error,
    epochs_for_ipc,
    evaluation_settings,
    find_validation_error,
)

SCHEMA = REPO / "config" / "schema.yaml"
PRESETS = sorted((REPO / "config" / "presets").glob("*.yaml"))


def validated(override):
    config = deep_update(load_yaml(REPO / "config" / "config.yaml"), override)
    validate(config, str(SCHEMA))
    return config


def failure_message(override):
    with pytest.raises(WorkflowError) as info:
        validated(override)
    error = find_validation_error(info.value)
    assert error is not None, "the WorkflowError should carry the jsonschema error"
    return describe_validation_error(error)


def test_presets_cover_the_papers_datasets():
    assert {p.stem for p in PRESETS} == {
        "imagenette",
        "imagewoof",
        "imageidc",
        "imagenet100",
        "imagenet1k",
        "cifar10",
        "cifar100",
    }


@pytest.mark.parametrize("path", [REPO / "config" / "demo.yaml", *PRESETS], ids=lambda p: p.stem)
def test_every_preset_validates_and_gets_defaults(path, tmp_path, monkeypatch):
    config = validated(load_yaml(path))
    monkeypatch.chdir(tmp_path)  # the run's folder, holding the teacher file a preset names
    if config["evaluate"]["teacher"]:
        with pytest.raises(ConfigError, match=r"evaluate.teacher = 'data/pretrain_models/.*': no such file"):
            check_config(config)
        Path(config["evaluate"]["teacher"]).parent.mkdir(parents=True)
        Path(config["evaluate"]["teacher"]).write_bytes(b"")
    check_config(config)
    # defaults are filled in for keys the file leaves out
    assert config["synthesize"]["negative_prompt"] == "cartoon, anime, painting"
    assert config["cluster"]["lof_n_neighbors"] == 10 or path.stem == "demo"


def test_a_missing_teacher_file_stops_a_run_whose_candidates_it_would_score(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    hard_labels = {"evaluate": {"protocols": ["minimax"], "teacher": "teacher.pth"}}
    check_config(validated(hard_labels))  # the teacher is not used: no check
    with pytest.raises(ConfigError, match=r"evaluate.teacher = 'teacher.pth': no such file"):
        check_config(validated({**hard_labels, "synthesize": {"candidates": [1, 4]}}))


def test_presets_carry_the_authors_values():
    imagenette = validated(load_yaml(REPO / "config" / "presets" / "imagenette.yaml"))
    assert imagenette["cluster"]["contamination"] == 0.1
    text_prototype = imagenette["text_prototype"]
    assert (text_prototype["beta"], text_prototype["top_k"], text_prototype["strategies"]) == (0.7, 30, ["prototype"])
    assert (imagenette["synthesize"]["strength"], imagenette["synthesize"]["guidance_scale"]) == (0.7, 10)
    assert imagenette["finetune"]["learning_rate"] == 1e-5 and imagenette["finetune"]["num_train_epochs"] == 8
    assert imagenette["caption"]["prompt"].startswith(
        "Describe the physical appearance of the {label} in the image. Include"
    )
    cifar100 = validated(load_yaml(REPO / "config" / "presets" / "cifar100.yaml"))
    assert cifar100["text_prototype"]["beta"] == 0.2 and cifar100["cluster"]["contamination"] == 0.0
    assert cifar100["dataset"]["eval_size"] == 32
    # run_cifar10.sh line 14: --contamination 0.0 --threshold 0.3 --tpk 30, but line 15 synthesizes from
    # --text_prototype cifar10_text/text_10_0.7_30.json (gen_prototype.py line 214 names the file by the
    # threshold; its default, line 42, is 0.7): beta 0.7, the prompts the images were made from.
    # Fine-tuned with --resolution=32 (cifar100_dm.sh too); clustering latents at --size 512
    cifar10 = validated(load_yaml(REPO / "config" / "presets" / "cifar10.yaml"))
    assert cifar10["text_prototype"]["beta"] == 0.7 and cifar10["text_prototype"]["top_k"] == 30
    assert cifar10["cluster"]["contamination"] == 0.0 and cifar10["dataset"]["eval_size"] == 32
    assert cifar10["finetune"]["resolution"] == cifar100["finetune"]["resolution"] == 32
    assert cifar10["encode"]["resolution"] == 512 and cifar10["encode"]["resize"] == "squash"
    # the authors' README: ImageNet-1K and CIFAR are evaluated with RDED; 04_evaluation/RDED/
    # imagenet-1k_10ipc_resnet-18_to_resnet-18_cr5.sh: --factor 2 --re-epochs 500;
    # cifar10_/cifar100_10ipc_resnet-18-modified_to_resnet-18-modified_cr5.sh: --factor 1 --re-epochs 500
    imagenet1k = validated(load_yaml(REPO / "config" / "presets" / "imagenet1k.yaml"))
    assert imagenet1k["evaluate"]["protocols"] == ["rded"]
    assert (imagenet1k["soft_label"]["factor"], imagenet1k["soft_label"]["epochs"]) == (2, 500)
    for cifar in (cifar10, cifar100):
        assert cifar["evaluate"]["protocols"] == ["rded"]
        assert (cifar["soft_label"]["factor"], cifar["soft_label"]["epochs"]) == (1, 500)
    # The authors' teachers: RDED's synthesize/utils.py load_model, line 238, reads
    # ./data/pretrain_models/{dataset}_{model_name}.pth (CIFAR, resnet18_modified); line 253 takes
    # torchvision's pretrained ResNet-18 for ImageNet-1K (resnet18-f37072fd.pth). Table 3 and 4: ResNet-18
    # students only (the *_resnet-18*_to_resnet-18* scripts), no run the tables did not make.
    assert cifar10["evaluate"]["teacher"] == "data/pretrain_models/cifar10_resnet18_modified.pth"
    assert cifar100["evaluate"]["teacher"] == "data/pretrain_models/cifar100_resnet18_modified.pth"
    assert imagenet1k["evaluate"]["teacher"] == "data/pretrain_models/resnet18-f37072fd.pth"
    for preset in (cifar10, cifar100, imagenet1k):
        assert preset["evaluate"]["models"] == ["resnet18"] and preset["teacher"]["architecture"] == "resnet18"
    assert validated(load_yaml(REPO / "config" / "presets" / "imagewoof.yaml"))["evaluate"]["protocols"] == ["minimax"]
    # RDED's defaults (argument.py, validation/main.py): T 20 with cutmix 1.0, AdamW 1e-3 / 0.01, 300 epochs
    soft = validated({})["soft_label"]
    assert (soft["temperature"], soft["cutmix"], soft["learning_rate"], soft["weight_decay"], soft["epochs"]) == (
        20,
        1.0,
        0.001,
        0.01,
        300,
    )
    # paper, section 4.1: 256 px for the ImageNet subsets, 224 for ImageNet-1K
    sizes = {p.stem: validated(load_yaml(p))["dataset"]["eval_size"] for p in PRESETS}
    assert sizes == {
        "imagenette": 256,
        "imagewoof": 256,
        "imageidc": 256,
        "imagenet100": 256,
        "imagenet1k": 224,
        "cifar10": 32,
        "cifar100": 32,
    }
    # ImageNet-100: Minimax's misc/class100.txt, whose first ten classes are ImageIDC's
    imagenet100 = validated(load_yaml(REPO / "config" / "presets" / "imagenet100.yaml"))
    imageidc = validated(load_yaml(REPO / "config" / "presets" / "imageidc.yaml"))
    classes = imagenet100["dataset"]["classes"]
    assert len(classes) == len(set(classes)) == 100
    assert classes[:3] == ["n02869837", "n01749939", "n02488291"] and classes[-1] == "n02090622"
    assert set(classes[:10]) == set(imageidc["dataset"]["classes"])


BAD = [
    ({"cluster": {"contamination": 0.9}}, ["cluster.contamination", "at most 0.5"]),
    ({"clustre": {}}, ["'clustre'", "top level", "cluster"]),
    ({"cluster": {"n_neigbors": 5}}, ["'n_neigbors'", "under cluster", "lof_n_neighbors"]),
    ({"ipc": [10, 0]}, ["ipc[1]", "at least 1"]),
    ({"ipc": []}, ["ipc", "at least 1 item"]),
    ({"seeds": [0, 0]}, ["seeds", "non-unique"]),
    ({"evaluate": {"models": ["vgg16"]}}, ["evaluate.models[0]", "'resnet18'"]),
    ({"text_prototype": {"beta": 0}}, ["text_prototype.beta", "greater than 0"]),
    ({"text_prototype": {"strategies": ["dcs"]}}, ["text_prototype.strategies[0]", "'label+keywords'"]),
    ({"caption": {"prompt": "Describe the image."}}, ["caption.prompt", "it must contain {label}."]),
    ({"caption": {"batch_size": "8"}}, ["caption.batch_size", "integer"]),
    ({"finetune": {"resolution": 500}}, ["finetune.resolution", "multiple of 8"]),
    ({"finetune": {"mixed_precision": "fp8"}}, ["finetune.mixed_precision", "'bf16'"]),
    ({"synthesize": {"prompt_encoding": "split"}}, ["synthesize.prompt_encoding", "'authors'"]),
    ({"dataset": {"source": "hub"}}, ["dataset.source", "'demo'"]),
    ({"dataset": {"classes": ["a/b"]}}, ["dataset.classes[0]", "pattern"]),
    ({"evaluate": {"epochs": [{"max_ipc": 10}]}}, ["evaluate.epochs[0]", "epochs"]),
    ({"run": "my run"}, ["run = 'my run'", "must start with a letter or digit"]),
    (
        {"synthesize": {"batch_size": 4}},
        ["'batch_size'", "under synthesize", "Allowed keys there: strength, guidance_scale"],
    ),
    ({"execution": {"evaluate": {"test_batch_size": 0}}}, ["execution.evaluate.test_batch_size", "at least 1"]),
]


@pytest.mark.parametrize("override,expected", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_config_is_rejected_with_a_message_naming_the_key(override, expected):
    message = failure_message(override)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} missing from: {message}"


def test_cross_key_checks():
    config = validated({"ipc": [10, 600], "evaluate": {"epochs": [{"max_ipc": 500, "epochs": 500}]}})
    with pytest.raises(ConfigError, match=r"evaluate.epochs has no entry for ipc 600"):
        check_config(config)
    config = validated({"dataset": {"label_table": "no/such/labels.tsv"}})
    with pytest.raises(ConfigError, match=r"dataset.label_table = 'no/such/labels.tsv' is not a file"):
        check_config(config)
    config = validated({"finetune": {"center_crop": False}})
    with pytest.raises(ConfigError, match=r"finetune.center_crop = false needs finetune.from_latents = false"):
        check_config(config)
    config = validated({"dataset": {"classes": ["a"], "labels": {"b": "bee"}}})
    with pytest.raises(ConfigError, match=r"dataset.labels names class\(es\) \['b'\]"):
        check_config(config)


def test_epochs_follow_the_protocol_table():
    table = validated({})["evaluate"]["epochs"]
    # MinimaxDiffusion argument.py, ipc_epoch: 1 -> 3000, <=10 -> 2000, <=50 -> 1500, <=200 -> 1000,
    # <=500 -> 500, more -> 300; exactly 100 classes: int(2/3 * epochs) rounded down to a multiple of 100.
    ipcs = (1, 2, 10, 20, 50, 100, 200, 500, 1000)
    assert [epochs_for_ipc(table, ipc) for ipc in ipcs] == [3000, 2000, 2000, 1500, 1500, 1000, 1000, 500, 300]
    assert [epochs_for_ipc(table, ipc, num_classes=100) for ipc in ipcs] == [
        2000,
        1300,
        1300,
        1000,
        1000,
        600,
        600,
        300,
        200,
    ]
    assert epochs_for_ipc(table, 10, num_classes=1000) == 2000
    assert epochs_for_ipc(table, 10, scale=2 / 3) == 1333


def test_evaluation_settings_are_minimax_by_class_count():
    evaluate = validated({})["evaluate"]
    # argument.py: lr 0.01, weight decay 5e-4, batch 64; test every epochs // 100 (epoch_print_freq)
    ten = evaluation_settings(evaluate, "10", 10, 256)
    assert (ten["epochs"], ten["test_every"]) == (2000, 20)
    assert (ten["learning_rate"], ten["weight_decay"], ten["batch_size"]) == (0.01, 5e-4, 64)
    hundred = evaluation_settings(evaluate, "50", 100, 256)
    assert (hundred["epochs"], hundred["test_every"], hundred["learning_rate"]) == (1000, 10, 0.01)
    # above 100 classes: lr 0.1, weight decay 1e-4, batch max(128, batch_size)
    many = evaluation_settings(evaluate, "10", 1000, 224)
    assert (many["learning_rate"], many["weight_decay"], many["batch_size"], many["epochs"]) == (0.1, 1e-4, 128, 2000)
    # a whole train set (ipc <= 0 in argument.py): --epochs' default 300, tested every epoch
    full = evaluation_settings(evaluate, "all", 10, 256)
    assert (full["epochs"], full["test_every"]) == (300, 1)
    # the input side follows dataset.eval_size: Minimax's 224 for the 256-px subsets, the images' side for CIFAR
    assert (ten["input_size"], many["input_size"]) == (224, 224)
    assert evaluation_settings(evaluate, "10", 10, 32)["input_size"] == 32
    assert evaluation_settings({**evaluate, "input_size": 224}, "10", 10, 32)["input_size"] == 224
    # values the user sets are kept
    mine = evaluation_settings(
        {**evaluate, "learning_rate": 0.05, "weight_decay": 0.0, "test_every": 7}, "10", 1000, 32
    )
    assert (mine["learning_rate"], mine["weight_decay"], mine["test_every"], mine["batch_size"]) == (0.05, 0.0, 7, 128)


def leaf_schemas(schema, path=()):
    if schema.get("type") == "object" and "properties" in schema:
        for key, sub in schema["properties"].items():
            yield from leaf_schemas(sub, (*path, key)) if sub.get("type") == "object" else [((*path, key), sub)]


def test_every_key_has_default_type_description_and_range():
    schema = load_yaml(SCHEMA)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    leaves = list(leaf_schemas(schema))
    assert len(leaves) > 60
    for path, sub in leaves:
        name = ".".join(path)
        assert "default" in sub, f"{name} has no default"
        assert "type" in sub, f"{name} has no type"
        assert sub.get("description"), f"{name} has no description"
        kinds = sub["type"] if isinstance(sub["type"], list) else [sub["type"]]
        if {"integer", "number"} & set(kinds):
            assert {"minimum", "exclusiveMinimum"} & set(sub), f"{name} has no lower bound"
        if "array" in kinds and sub["items"].get("type") in ("integer", "number"):
            assert {"minimum", "exclusiveMinimum"} & set(sub["items"]), f"{name} items have no lower bound"


@pytest.mark.workflow
def test_snakemake_stops_before_any_job_on_a_bad_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster:\n  contamination: 0.9\n")
    result = snakemake(tmp_path, "-n", "--configfile", str(REPO / "config" / "demo.yaml"), str(bad), check=False)
    assert result.returncode != 0
    assert "Invalid config: cluster.contamination = 0.9" in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


def test_a_safety_checker_is_asked_of_a_model_that_ships_one(tmp_path):
    """synthesize.safety_checker (VLCP's sets) and d4m.synthesize.safety_checker (D4M's, as D4M's gen_syn_image.py:80
    keeps it) need a models.diffusion with a safety checker and feature extractor: stopped at plan time."""
    import json

    from vlcp.config import check_safety_checker

    tiny = validated(
        {"models": {"diffusion": "tiny"}, "methods": ["vlcp", "d4m"], "d4m": {"synthesize": {"safety_checker": True}}}
    )
    with pytest.raises(
        ConfigError, match=r"d4m.synthesize.safety_checker = true .* 'tiny', but the tiny model has none"
    ):
        check_safety_checker(tiny)
    check_safety_checker(
        validated({"models": {"diffusion": "tiny"}, "d4m": {"synthesize": {"safety_checker": True}}})
    )  # no d4m
    sd = tmp_path / "sd"
    (sd / "safety_checker").mkdir(parents=True)
    (sd / "feature_extractor").mkdir()
    index = {"safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
             "feature_extractor": ["transformers", "CLIPImageProcessor"]}  # fmt: skip
    (sd / "model_index.json").write_text(json.dumps(index))
    asked = {"models": {"diffusion": str(sd)}, "synthesize": {"safety_checker": True}}
    check_safety_checker(validated(asked))
    (sd / "model_index.json").write_text(json.dumps({**index, "safety_checker": [None, None]}))
    with pytest.raises(ConfigError, match=r"synthesize.safety_checker = true .* lack safety_checker"):
        check_safety_checker(validated(asked))


def test_the_authors_precision_and_safety_checker_are_the_defaults():
    """The defaults of the rows in docs/fidelity.md, each pinned to its source line."""
    config = validated({})
    # haotian-liu/LLaVA c121f04, llava/model/builder.py:42-43: kwargs['torch_dtype'] = torch.float16
    assert config["caption"]["dtype"] == "float16"
    # VLCP d0060eb, 03_distiilation/gen_syn_image.py:158-159: safety_checker = None, requires_safety_checker = False
    assert config["synthesize"]["safety_checker"] is False
    # suduo94/D4M da35d10, distillation/gen_syn_image.py:80 keeps SD v1.5's checker: vlcp does otherwise, by choice
    assert config["d4m"]["synthesize"]["safety_checker"] is False
    fidelity = (REPO / "docs" / "fidelity.md").read_text()
    for source in ("builder.py:42-43", "model_vqa.py:64", "gen_syn_image.py:158-159", "gen_syn_image.py:80",
                   "pipeline_stable_diffusion_latents2img.py:769-771", "nette_dm.sh:3"):  # fmt: skip
        assert source in fidelity, f"docs/fidelity.md names {source}"
    assert "`d4m.synthesize.safety_checker: true`" in fidelity and "`synthesize.safety_checker: true`" in fidelity
    assert "ships generation\nscripts for ImageNet-1K only" in fidelity


MALFORMED_TABLES = {
    "no tab": ("n01\ttench\nt-shirt\n", "line 2 has no tab: 't-shirt'"),
    "empty line": ("n01\ttench\n\nn02\tgoldfish\n", "line 2 is empty"),
    "no class name": ("n01\ttench\n\tno class\n", "line 2 has no class name before its tab"),
    "no label text": ("wnid\tlabel\nn01\t \n", "line 2 has no label text after its tab"),
    "two tabs": ("n01\ttench\tfish\n", "line 1 has 2 tabs"),
    "a class twice": ("n01\ttench\nn01\tgoldfish\n", "line 2 names class 'n01' again (first on line 1)"),
}


@pytest.mark.parametrize("mistake", sorted(MALFORMED_TABLES))
def test_a_malformed_label_table_stops_the_plan_naming_the_file_and_line(mistake, tmp_path):
    text, words = MALFORMED_TABLES[mistake]
    table = tmp_path / "labels.tsv"
    table.write_text(text)
    config = validated({"dataset": {"root": str(tmp_path), "label_table": str(table)}})
    with pytest.raises(ConfigError) as info:
        check_config(config)
    message = str(info.value)
    assert message.startswith(f"Invalid config: dataset.label_table = {str(table)!r}: {table}, {words}"), message
    assert "\n" not in message
    table.write_text("# a comment\nn01\ttench\nn02\tgoldfish, Carassius auratus\n")
    check_config(config)  # a well-formed table passes


def test_every_problem_across_keys_is_reported_at_once(tmp_path):
    from vlcp.config import config_problems

    config = validated(
        {
            "dataset": {"root": str(tmp_path), "label_table": str(tmp_path / "none.tsv")},
            "finetune": {"center_crop": False},
            "evaluate": {"protocols": ["rded"], "teacher": str(tmp_path / "t.pth")},
        }
    )
    problems = config_problems(config)
    assert [p.split(" = ")[0] for p in problems] == [
        "Invalid config: evaluate.teacher",
        "Invalid config: dataset.label_table",
        "Invalid config: finetune.center_crop",
    ], problems
    with pytest.raises(ConfigError) as info:
        check_config(config)
    assert str(info.value).splitlines() == problems


def test_a_pattern_is_said_in_words_not_as_an_expression():
    message = failure_message({"caption": {"prompt": "Describe the image."}})
    assert message == (
        "Invalid config: caption.prompt = 'Describe the image.' is not allowed: it must contain {label}."
    ), message
