"""Stage 7 on the tiny pipeline: IPC images of the evaluation size; one image regenerated alone matches."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from vlcp import contract, tiny_models
from vlcp.models import load_stable_diffusion
from vlcp.synthesize import chunk_ids, encode_prompt, image_seed, prompt_embeddings, synthesize

LONG = " ".join(["a brown dog with long ears standing on green grass"] * 12)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth") / "sd"
    tiny_models.save_tiny_stable_diffusion(folder, seed=0, resolution=32)
    return folder


@pytest.fixture(scope="module")
def pipe(pipeline_dir):
    pipe = load_stable_diffusion(str(pipeline_dir), img2img=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_chunked_and_truncated_encodings(pipe):
    ids = chunk_ids(pipe.tokenizer, LONG)
    assert ids.shape[1] == 77 and ids.shape[0] > 1
    assert (ids[:, 0] == pipe.tokenizer.bos_token_id).all()
    assert chunk_ids(pipe.tokenizer, LONG, truncate=True).shape == (1, 77)
    states, negative = prompt_embeddings(pipe, LONG, "cartoon", "chunk")
    assert states.shape == negative.shape == (1, 77 * ids.shape[0], states.shape[2])
    torch.testing.assert_close(negative, encode_prompt(pipe, "cartoon", chunks=ids.shape[0]), rtol=0, atol=0)
    states, negative = prompt_embeddings(pipe, LONG, "cartoon", "truncate")
    assert states.shape[1] == negative.shape[1] == 77


def one_token_words(tokenizer):
    """Words of the tiny vocabulary that are one token each (as most English words are in CLIP's), so a
    prompt of n of them is n tokens."""
    return [w for w in tiny_models.vocabulary() if len(tokenizer(w, add_special_tokens=False).input_ids) == 1]


@pytest.fixture(scope="module")
def words(pipe):
    vocabulary = one_token_words(pipe.tokenizer)[:40]
    return lambda n: " ".join(vocabulary[i % len(vocabulary)] for i in range(n))


@pytest.fixture(scope="module")
def negative(pipe):
    """The authors' shape of negative prompt: three words, two commas (5 tokens, as 'cartoon, anime, painting')."""
    return ", ".join(one_token_words(pipe.tokenizer)[40:43])


@torch.inference_mode()
def get_pipeline_embeds(pipe, prompt, negative_prompt):
    """The authors' encoding, restated from gen_syn_image.py's get_pipeline_embeds: the text with more
    words (split on spaces) is tokenized whole, the other padded to its length ("max_length", no
    truncation); both are cut into model_max_length slices, each slice encoded alone, concatenated."""
    tok, width = pipe.tokenizer, pipe.tokenizer.model_max_length
    if len(prompt.split(" ")) >= len(negative_prompt.split(" ")):
        ids = tok(prompt, return_tensors="pt", truncation=False).input_ids
        other = tok(
            negative_prompt, truncation=False, padding="max_length", max_length=ids.shape[-1], return_tensors="pt"
        ).input_ids
        ids, negative_ids = ids, other
    else:
        negative_ids = tok(negative_prompt, return_tensors="pt", truncation=False).input_ids
        ids = tok(
            prompt, return_tensors="pt", truncation=False, padding="max_length", max_length=negative_ids.shape[-1]
        ).input_ids
    length = ids.shape[-1]
    states = [pipe.text_encoder(ids[:, i : i + width])[0] for i in range(0, length, width)]
    negatives = [pipe.text_encoder(negative_ids[:, i : i + width])[0] for i in range(0, length, width)]
    return torch.cat(states, dim=1), torch.cat(negatives, dim=1)


@pytest.mark.parametrize("count", [1, 6, 60, 200])
def test_prompt_embeddings_are_the_authors(pipe, words, negative, count):
    prompt = words(count)
    assert len(pipe.tokenizer(prompt, add_special_tokens=False, truncation=False).input_ids) == count
    assert len(pipe.tokenizer(negative, add_special_tokens=False).input_ids) == 5
    states, negative_states = prompt_embeddings(pipe, prompt, negative)
    # n tokens + BOS + EOS, not padded to 77: the shorter of the two padded to the longer
    length = max(count, 5) + 2
    assert states.shape == negative_states.shape == (1, length, pipe.text_encoder.config.hidden_size)
    reference = get_pipeline_embeds(pipe, prompt, negative)
    torch.testing.assert_close(states, reference[0], rtol=0, atol=0)
    torch.testing.assert_close(negative_states, reference[1], rtol=0, atol=0)


def test_an_18_token_prompt_is_20_states_long_and_long_prompts_have_no_bos_per_slice(pipe, words, negative):
    prompt = words(18)
    assert len(pipe.tokenizer(prompt, add_special_tokens=False).input_ids) == 18
    assert prompt_embeddings(pipe, prompt, negative)[0].shape[1] == 20
    # 200 words: 202 ids in slices of 77, 77 and 48; the second slice starts mid-sentence, without a BOS
    long = words(200)
    ids = pipe.tokenizer(long, truncation=False).input_ids
    assert len(ids) == 202 and ids[77] != pipe.tokenizer.bos_token_id
    states, _ = prompt_embeddings(pipe, long, negative)
    alone = pipe.text_encoder(torch.tensor([ids[77:154]]))[0]
    torch.testing.assert_close(states[:, 77:154], alone, rtol=0, atol=0)


def test_batch_and_single_regeneration_give_the_same_pixels(pipe):
    centres = torch.randn(4, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    prompts = ["a dog", LONG, "a white dog running", "grass"]
    seeds = [image_seed("dog", k, 0) for k in range(4)]
    kwargs = dict(
        negative_prompt="cartoon, anime, painting",
        strength=0.7,
        guidance_scale=10.0,
        num_inference_steps=10,
        prompt_encoding="authors",
    )
    batch = synthesize(pipe, centres, prompts, seeds, {**kwargs, "batch_size": 4})
    assert len(batch) == 4 and all(img.size == (32, 32) for img in batch)
    alone = synthesize(pipe, centres[2:3], prompts[2:3], seeds[2:3], {**kwargs, "batch_size": 1})
    assert np.array_equal(np.asarray(alone[0]), np.asarray(batch[2]))
    long_alone = synthesize(pipe, centres[1:2], prompts[1:2], seeds[1:2], {**kwargs, "batch_size": 1})
    assert np.array_equal(np.asarray(long_alone[0]), np.asarray(batch[1]))
    assert not np.array_equal(np.asarray(batch[0]), np.asarray(batch[2]))
    made = []
    resumed = synthesize(
        pipe,
        centres,
        prompts,
        seeds,
        {**kwargs, "batch_size": 4},
        done={0: batch[0]},
        on_image=lambda k, img: made.append(k),
    )
    assert sorted(made) == [1, 2, 3], "a resumed batch keeps the finished image and makes the rest"
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(resumed, batch))


def test_image_seed_depends_on_class_cluster_and_seed():
    assert image_seed("dog", 0, 0) == image_seed("dog", 0, 0)
    assert (
        len({image_seed("dog", 0, 0), image_seed("dog", 1, 0), image_seed("dog", 0, 1), image_seed("cat", 0, 0)}) == 4
    )


def test_cli_writes_ipc_images_of_the_evaluation_size(pipeline_dir, tmp_path):
    ipc = 3
    centres = torch.randn(ipc, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    clusters = {"members": [["a"], ["b"], ["c"]], "outliers": []}
    contract.write_clusters(tmp_path / "c.json", tmp_path / "c.safetensors", clusters, centres)
    prompts = [{"prompt": p, "image": None, "keywords": [], "nonrepresentative": []} for p in ("a dog", LONG, "cat")]
    contract.write_prototypes(tmp_path / "p.json", prompts)
    out = tmp_path / "distilled" / "dog"
    cmd = [
        sys.executable,
        "-m",
        "vlcp.synthesize",
        "--model",
        str(pipeline_dir),
        "--clusters",
        str(tmp_path / "c.json"),
        "--centres",
        str(tmp_path / "c.safetensors"),
        "--prototypes",
        str(tmp_path / "p.json"),
        "--class",
        "dog",
        "--seed",
        "0",
        "--num-inference-steps",
        "10",
        "--batch-size",
        "2",
        "--size",
        "20",
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == ["0.png", "1.png", "2.png"]
    assert all(Image.open(out / f).size == (20, 20) for f in files)
    assert not (tmp_path / "work").exists()


def test_candidate_seeds_and_the_choice_rule():
    from vlcp.synthesize import candidate_items, choose

    items = candidate_items("dog", 2, 0, 3)
    assert [(k, c) for k, c, _ in items] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert items[0][2] == image_seed("dog", 0, 0), "candidate 0 is the image of a set of one candidate"
    assert len({s for _, _, s in items}) == 6
    assert image_seed("dog", 0, 0, 2) == image_seed("dog", 0, 0, 2) != image_seed("dog", 0, 1, 2)
    assert choose([0.2, 0.7, 0.1]) == 1
    assert choose([0.5, 0.2, 0.5]) == 0, "a tie goes to the lower candidate index"


def test_candidates_are_scored_by_the_teacher_and_the_best_is_kept(pipeline_dir, tmp_path):
    import json

    from safetensors.torch import save_file

    from vlcp.rded import build_network, test_tensor
    from vlcp.synthesize import class_probabilities
    from vlcp.synthesize import main as synthesize_main

    torch.manual_seed(0)
    teacher = build_network("convnet6", 3, 16)
    save_file(teacher.state_dict(), tmp_path / "teacher.safetensors")
    centres = torch.randn(2, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    contract.write_clusters(
        tmp_path / "c.json", tmp_path / "c.safetensors", {"members": [["a"], ["b"]], "outliers": []}, centres
    )
    prompts = [{"prompt": p, "image": None, "keywords": [], "nonrepresentative": []} for p in ("a dog", "dog")]
    contract.write_prototypes(tmp_path / "p.json", prompts)
    out, kept = tmp_path / "distilled" / "dog", tmp_path / "candidates" / "dog"
    argv = ["--model", str(pipeline_dir), "--clusters", str(tmp_path / "c.json")]
    argv += ["--centres", str(tmp_path / "c.safetensors"), "--prototypes", str(tmp_path / "p.json")]
    argv += ["--class", "dog", "--seed", "0", "--num-inference-steps", "4", "--size", "20"]
    argv += ["--work", str(tmp_path / "work"), "--out", str(out), "--candidates", "3"]
    argv += ["--teacher", str(tmp_path / "teacher.safetensors"), "--teacher-architecture", "convnet6"]
    argv += ["--teacher-input-size", "16", "--num-classes", "3", "--label", "2"]
    synthesize_main([*argv, "--keep-candidates", "--candidates-dir", str(kept)])
    record = json.loads((out / "provenance.json").read_text())
    choices = record["settings"]["choices"]
    assert [c["cluster"] for c in choices] == [0, 1] and all(len(c["scores"]) == 3 for c in choices)
    model = build_network("convnet6", 3, 16)
    model.load_state_dict(teacher.state_dict())
    model.eval()
    for choice in choices:
        k = choice["cluster"]
        paths = [kept / f"{k}-{c}.png" for c in range(3)]
        scores = class_probabilities(model, paths, 2, 16)
        assert np.allclose(scores, choice["scores"], atol=1e-6)
        assert choice["chosen"] == int(np.argmax(scores))
        assert (out / f"{k}.png").read_bytes() == paths[choice["chosen"]].read_bytes()
    assert test_tensor(paths, 16).shape == (3, 3, 16, 16)
    assert sorted(p.name for p in out.glob("*.png")) == ["0.png", "1.png"]
