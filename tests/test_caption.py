"""Stage 2, caption, on the tiny LLaVA: the authors' prompt and image handling, kill and resume."""

import signal

from conftest import calls, wrapped
from vlcp import contract
from vlcp.models import load_captioner


def caption_args(world, out, work, batch_size=4):
    return [
        "--index",
        world / "index" / "three.jsonl",
        "--root",
        world / "data",
        "--model",
        world / "llava",
        "--prompt",
        "Describe the physical appearance of the {label} in the image.",
        "--batch-size",
        batch_size,
        "--max-new-tokens",
        12,
        "--work",
        work,
        "--out",
        out,
    ]


def test_caption_kill_and_resume_matches_an_uninterrupted_run(world, tmp_path):
    straight = tmp_path / "straight.jsonl"
    result = wrapped("vlcp.caption", "caption_batch", caption_args(world, straight, tmp_path / "p0"), tmp_path / "c0")
    assert result.returncode == 0, result.stderr
    rows = contract.read_captions(straight, [r["image"] for r in contract.read_index(world / "index" / "three.jsonl")])
    assert len(rows) == 20 and all(r["caption"].strip() for r in rows)
    assert calls(tmp_path / "c0") == 5

    out, work = tmp_path / "resumed.jsonl", tmp_path / "work" / "three"
    killed = wrapped("vlcp.caption", "Progress.append", caption_args(world, out, work), tmp_path / "c1", kill_after=3)
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists(), "a killed job must not leave its declared output"
    assert (work / "batches.jsonl").exists()

    resumed = wrapped("vlcp.caption", "caption_batch", caption_args(world, out, work), tmp_path / "c2")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 12 of 20 images already captioned" in resumed.stderr
    assert calls(tmp_path / "c2") == 2, "only the two unfinished batches may be captioned again"
    assert out.read_bytes() == straight.read_bytes()
    assert not work.exists(), "a finished job removes its work folder"


def test_caption_progress_of_other_settings_is_not_reused(world, tmp_path):
    out, work = tmp_path / "a.jsonl", tmp_path / "w"
    wrapped("vlcp.caption", "Progress.append", caption_args(world, out, work), tmp_path / "c1", kill_after=2)
    result = wrapped("vlcp.caption", "caption_batch", caption_args(world, out, work, batch_size=5), tmp_path / "c2")
    assert result.returncode == 0 and "resuming" not in result.stderr
    assert calls(tmp_path / "c2") == 4


def test_caption_prompt_and_images_are_llava_model_vqa(world):
    from PIL import Image

    from vlcp.caption import build_prompt, mean_colour, pad_to_square

    _, processor = load_captioner(str(world / "llava"))
    # llava/conversation.py, conv_llava_v1 (SeparatorStyle.TWO, sep " "), as model_vqa.py builds it for LLaVA-1.5
    assert build_prompt(processor, "Describe the {label}.", "tench") == (
        "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the human's questions. USER: <image>\nDescribe the tench. ASSISTANT:"
    )
    assert (
        build_prompt(processor, "Describe the {label}.", "tench", "chat_template")
        == "USER: <image>\nDescribe the tench. ASSISTANT:"
    )
    # expand2square with the CLIP processor's mean (0.48145466, 0.4578275, 0.40821073) x 255, truncated
    assert mean_colour(processor) == (122, 116, 104)
    wide = Image.new("RGB", (40, 20), (255, 0, 0))
    square = pad_to_square(wide, (122, 116, 104))
    assert square.size == (40, 40)
    assert square.getpixel((0, 0)) == (122, 116, 104) and square.getpixel((20, 20)) == (255, 0, 0)
    assert square.getpixel((20, 9)) == (122, 116, 104) and square.getpixel((20, 10)) == (255, 0, 0)
    assert pad_to_square(square, (0, 0, 0)) is square
