"""What breaks at real scale, shown on a CPU where a CPU can show it: lazy latents, threads, dtype
choice, test-batch sizing, checkpoint ordering, weights variants, the effective batch."""

import json
from pathlib import Path

import pytest
import torch

from conftest import REPO, snakemake
from vlcp import contract, evaluate, finetune, models, tiny_models


def write_class_latents(path, n, seed, flipped=True):
    generator = torch.Generator().manual_seed(seed)
    tensors = {"latents": torch.randn(n, 4, 8, 8, generator=generator)}
    if flipped:
        tensors["latents_flipped"] = torch.randn(n, 4, 8, 8, generator=generator)
    images = [f"train/c{seed}/{i}.png" for i in range(n)]
    contract.write_latents(path, tensors, images)
    return tensors, images


def test_latents_file_rows_equal_the_whole_file(tmp_path):
    tensors, images = write_class_latents(tmp_path / "a.safetensors", 7, seed=1)
    lazy = contract.LatentsFile(tmp_path / "a.safetensors")
    assert lazy.images == images and len(lazy) == 7
    for name, whole in tensors.items():
        for i in range(7):
            row = lazy.row(name, i)
            assert row.dtype == whole.dtype and torch.equal(row, whole[i])


def test_training_batches_equal_those_of_the_concatenated_latents(tmp_path):
    """The lazy reader gives, batch for batch, the bytes that concatenating every class's latents gave."""
    paths = [tmp_path / f"{k}.safetensors" for k in range(3)]
    whole = [write_class_latents(path, n, seed=k)[0] for k, (path, n) in enumerate(zip(paths, (5, 9, 4)))]
    latents = torch.cat([t["latents"] for t in whole])
    flipped = torch.cat([t["latents_flipped"] for t in whole])
    ids = torch.arange(18 * 77, dtype=torch.int32).reshape(18, 77)
    dataset = finetune.TrainingSet(ids, [contract.LatentsFile(p) for p in paths])
    for epoch in range(3):
        for batch in finetune.epoch_batches(18, 4, seed=0, epoch=epoch, random_flip=True):
            loader = torch.utils.data.DataLoader(dataset, batch_sampler=[batch])
            got, got_ids = next(iter(loader))
            want = torch.stack([(flipped if flip else latents)[i] for i, flip in batch])
            assert torch.equal(got, want)
            assert got_ids.dtype == torch.int64 and torch.equal(got_ids, ids[[i for i, _ in batch]].long())


def test_a_cut_latents_file_is_named(tmp_path):
    path = tmp_path / "cut.safetensors"
    write_class_latents(path, 6, seed=0)
    path.write_bytes(path.read_bytes()[:-100])
    lazy = contract.LatentsFile(path)
    with pytest.raises(contract.ContractError, match=r"cut\.safetensors is shorter than its header says"):
        lazy.row("latents_flipped", 5)
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(contract.ContractError, match=r"junk\.safetensors: not a readable latents file"):
        contract.LatentsFile(tmp_path / "junk.safetensors")


def test_flip_without_flipped_latents_names_the_file(tmp_path):
    index, captions, latents = tmp_path / "i.jsonl", tmp_path / "c.jsonl", tmp_path / "l.safetensors"
    _, images = write_class_latents(latents, 3, seed=0, flipped=False)
    contract.write_index(
        index, [{"image": im, "class": "c0", "label": "c", "width": 8, "height": 8, "mode": "RGB"} for im in images]
    )
    contract.write_captions(captions, [{"image": im, "caption": "a c"} for im in images])
    tokenizer = tiny_models.build_tiny_stable_diffusion(seed=0, resolution=32).tokenizer
    with pytest.raises(contract.ContractError, match=r"l\.safetensors has no flipped latents"):
        finetune.load_training_data([index], [captions], [latents], tmp_path, tokenizer, random_flip=True)
    ids, truncated, files, image_paths = finetune.load_training_data(
        [index], [captions], [latents], tmp_path, tokenizer, False
    )
    assert ids.shape == (3, tokenizer.model_max_length) and ids.dtype == torch.int32 and truncated == 0
    assert image_paths is None and files[0].images == images


@pytest.mark.workflow
def test_every_rule_runs_on_its_cpus_per_task(tmp_path):
    """Threads in the plan come from resources.<rule>.cpus_per_task (Snakemake then sets OMP_NUM_THREADS)."""
    extra = tmp_path / "threads.yaml"
    extra.write_text(
        "resources:\n  finetune: {cpus_per_task: 6}\n  cluster: {cpus_per_task: 3}\n  default: {cpus_per_task: 2}\n"
    )
    plan = snakemake(
        tmp_path, "-n", "--cores", "8", "--configfile", str(REPO / "config" / "demo.yaml"), str(extra)
    ).stdout
    threads = {}
    for block in plan.split("\nrule ")[1:]:
        rule = block.split(":", 1)[0]
        line = next((ln for ln in block.splitlines() if ln.strip().startswith("threads:")), "threads: 1")
        threads.setdefault(rule, set()).add(int(line.split(":")[1]))
    assert {"finetune", "cluster", "index", "evaluate", "caption"} <= set(threads)
    assert threads["finetune"] == {6} and threads["cluster"] == {3}
    assert threads["index"] == {2} and threads["evaluate"] == {1}, "the demo asks 1 core for evaluation"


def test_auto_dtype_uses_float16_where_bfloat16_is_only_emulated(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert models.dtype_for("auto", cuda) == torch.float16, "V100/T4: bfloat16 emulated"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert models.dtype_for("auto", cuda) == torch.bfloat16, "A100/H100: native"
    assert models.dtype_for("auto", cuda, auto_bf16=False) == torch.float16, "Stable Diffusion: the authors' float16"
    assert models.dtype_for("bfloat16", torch.device("cpu")) == torch.float32


def test_test_batch_fits_free_memory():
    # ConvNet-6 at 224 px: about 30 GB transiently for 500 images, i.e. 60 MB an image.
    per_image = 30e9 / 500
    assert evaluate.fitting_batch(500, 80e9, per_image) == 500, "an 80 GB GPU keeps the configured batch"
    assert evaluate.fitting_batch(500, 24e9, per_image) == 280
    assert evaluate.fitting_batch(500, 32e9, per_image) == 373
    assert evaluate.fitting_batch(500, 1e6, per_image) == 1
    assert evaluate.fitting_batch(500, 24e9, 0) == 500


class OutOfMemoryAbove(torch.nn.Module):
    """A classifier that fails like a GPU out of memory on batches larger than ``limit``."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.linear = torch.nn.Linear(3, 4)

    def forward(self, x):
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.linear(x.mean((2, 3)))


def test_accuracy_halves_a_test_batch_that_runs_out_of_memory():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (100, 3, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 4, (100,))
    model = OutOfMemoryAbove(limit=30)
    roomy = OutOfMemoryAbove(limit=1000)
    roomy.load_state_dict(model.state_dict())
    want, batch = evaluate.accuracy(roomy, images, labels, 100)
    assert batch == 100
    got, batch = evaluate.accuracy(model, images, labels, 100)
    assert batch == 25 and got == want
    with pytest.raises(torch.cuda.OutOfMemoryError):
        evaluate.accuracy(OutOfMemoryAbove(limit=0), images, labels, 4)


class RecordingAccelerator:
    """Stands in for accelerate across processes: notes, at each barrier, which folders exist."""

    def __init__(self, work):
        self.work, self.is_main_process, self.barriers = work, True, []

    def save_state(self, folder):
        Path(folder).mkdir(parents=True)
        (Path(folder) / "random_states_0.pkl").write_bytes(b"rank 0")

    def wait_for_everyone(self):
        self.barriers.append(sorted(p.name for p in self.work.iterdir()))


def test_checkpoint_folder_is_renamed_only_after_every_process_wrote(tmp_path):
    accelerator = RecordingAccelerator(tmp_path)
    finetune.save_checkpoint(accelerator, tmp_path, 10, keep=2)
    assert accelerator.barriers[0] == [".tmp-checkpoint-10"], "the first barrier comes before the rename"
    assert accelerator.barriers[-1] == ["checkpoint-10"]
    assert json.loads((tmp_path / "checkpoint-10" / "vlcp-step.json").read_text()) == {"step": 10}


def test_effective_batch_counts_every_process():
    assert finetune.effective_batch(32, 4, 1) == 128
    assert finetune.effective_batch(32, 4, 8) == 1024


@pytest.fixture(scope="module")
def fp16_only_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("variants")
    tiny_models.build_tiny_stable_diffusion(seed=0, resolution=32).save_pretrained(root / "sd", variant="fp16")
    model, processor = tiny_models.build_tiny_llava(seed=0)
    model.save_pretrained(root / "llava", variant="fp16")
    processor.save_pretrained(root / "llava")
    return root


def test_a_folder_of_only_fp16_weights_loads(fp16_only_models):
    sd, llava = fp16_only_models / "sd", fp16_only_models / "llava"
    weights = sorted(p.name for p in sd.rglob("*.safetensors"))
    assert weights and all(".fp16." in name for name in weights), weights
    assert models.weights_variant(str(sd)) == "fp16" and models.weights_variant(str(llava)) == "fp16"
    pipe = models.load_stable_diffusion(str(sd))
    reference = tiny_models.build_tiny_stable_diffusion(seed=0, resolution=32)
    assert torch.equal(next(pipe.unet.parameters()), next(reference.unet.parameters()))
    assert models.load_vae(str(sd)).config.latent_channels == 4
    model, processor = models.load_captioner(str(llava))
    assert processor.tokenizer.padding_side == "left" and model.config.model_type == "llava"
    assert models.load_stable_diffusion(str(sd), variant="fp16").unet is not None, "named explicitly"


def test_a_folder_of_plain_weights_loads_them(tmp_path):
    tiny_models.save_tiny_stable_diffusion(tmp_path / "sd", seed=0, resolution=32)
    assert models.weights_variant(str(tmp_path / "sd")) is None
    assert (
        models.weights_variant("someone/hub-id") is None and models.weights_variant("someone/hub-id", "fp16") == "fp16"
    )
    with pytest.raises(models.ModelNotFoundError, match="models.diffusion"):
        models.load_stable_diffusion(str(tmp_path / "sd"), variant="fp16")


def test_every_gpu_rule_goes_to_the_gpu_partition():
    """A rule that asks for a GPU (its resources entry has gpu >= 1 by default) is listed in the SLURM profile's
    set-resources with a partition: otherwise it lands in the CPU partition with a GPU request and never starts."""
    import re

    import yaml

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    defaults = schema["properties"]["resources"]["properties"]
    profile = yaml.safe_load((REPO / "slurm" / "config.yaml").read_text())
    gpu_rules = set()
    for smk in (REPO / "rules").glob("*.smk"):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", smk.read_text(), re.M):
            entry = re.search(r'rule_resources\("(\w+)"', body)
            if entry and defaults[entry.group(1)]["properties"]["gpu"]["default"] >= 1:
                gpu_rules.add(name)
    assert {"caption", "finetune", "encode", "synthesize", "evaluate", "teacher"} <= gpu_rules, gpu_rules
    missing = sorted(r for r in gpu_rules if "slurm_partition" not in profile["set-resources"].get(r, {}))
    assert not missing, f"GPU rules without a GPU partition in slurm/config.yaml: {missing}"
