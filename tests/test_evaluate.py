"""Stage 8-9: the classifiers, the device-resident training, and the aggregation."""

import math

import pytest
import torch

from conftest import minimax_settings
from vlcp import augment, contract, demo_data, evaluate, scores
from vlcp.aggregate import markdown_table, summarize
from vlcp.evaluate import image_tensor, milestone_epochs, randomness, train_and_test
from vlcp.index import index_class
from vlcp.networks import MODELS, build_model


def parameters(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [32, 224])
def test_forward_and_backward(name, size):
    torch.manual_seed(0)
    model = build_model(name, num_classes=10, input_size=size)
    x = torch.randn(2, 3, size, size)
    logits = model(x)
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def flops(model, size):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops()


def test_parameter_counts_match_the_architectures():
    # ConvNet-6, width 128, 224 px: 6 pools -> 3x3 map.
    # conv 3->128: 3*128*9 + 128; five convs 128->128: 128*128*9 + 128 each; six norms: 2*128 each;
    # linear 128*3*3 -> 10: 1152*10 + 10.
    convnet = 3 * 128 * 9 + 128 + 5 * (128 * 128 * 9 + 128) + 6 * 256 + 1152 * 10 + 10
    assert parameters(build_model("convnet6", 10, 224)) == convnet == 754_570
    # torchvision's ResNet-18 has 11,689,512 parameters with 1000 classes; GroupNorm(C, C) has as many
    # parameters as BatchNorm (a weight and a bias per channel).
    assert parameters(build_model("resnet18", 1000, 224)) == 11_689_512
    assert parameters(build_model("resnet18", 1000, 224, norm="batch")) == 11_689_512
    # ResNetAP-10: a 7x7 stem (3x3 at 128 px and below), one basic block per stage, 1x1 shortcut convs
    # where the width changes (no bias), average pools instead of strides.
    blocks = 0
    for c_in, c in ((64, 64), (64, 128), (128, 256), (256, 512)):
        blocks += c_in * c * 9 + c * c * 9 + 4 * c
        if c_in != c:
            blocks += c_in * c + 2 * c
    assert parameters(build_model("resnetap10", 10, 224)) == 3 * 64 * 49 + 2 * 64 + blocks + 512 * 10 + 10 == 4_910_922
    assert parameters(build_model("resnetap10", 10, 32)) == 3 * 64 * 9 + 2 * 64 + blocks + 512 * 10 + 10 == 4_903_242


def test_classifiers_are_minimax_networks():
    # Reference values measured on MinimaxDiffusion's train_models (resnet_ap.py: ResNetAP('imagenet', 10, 10,
    # norm_type='instance', size=S); resnet.py: ResNet('imagenet', 18, 10, ...); convnet.py: ConvNet(10,
    # net_depth=6, im_size=(224, 224))) with torch.utils.flop_counter, 10 classes. Built from the same seed,
    # ResNetAP-10 also has the reference's weights, bit for bit.
    expected = {
        ("resnetap10", 224): 3_641_583_616,
        ("resnetap10", 128): 3_579_848_704,
        ("resnetap10", 32): 884_353_024,
        ("resnet18", 224): 3_627_132_928,
        ("resnet18", 128): 4_485_818_368,
        ("resnet18", 32): 1_110_845_440,
        ("convnet6", 224): 5_274_524_160,
    }
    for (name, size), reference in expected.items():
        assert flops(build_model(name, 10, size), size) == reference, (name, size)
    # resnet_ap.py's IntroBlock at 224 px: 7x7 conv with stride 1, norm, ReLU, AvgPool(4); at 128 px a 3x3 conv
    # and AvgPool(2); at 64 px and below no pool. Downsampling blocks pool after norm and ReLU.
    large = build_model("resnetap10", 10, 224)
    assert large.stem[0].kernel_size == (7, 7) and large.stem[0].stride == (1, 1)
    assert isinstance(large.stem[3], torch.nn.AvgPool2d) and large.stem[3].kernel_size == 4
    assert build_model("resnetap10", 10, 128).stem[3].kernel_size == 2
    assert len(build_model("resnetap10", 10, 64).stem) == 3
    # Convolutions from N(0, sqrt(2 / (k * k * out))): the 7x7 stem's std is sqrt(2 / 3136) = 0.0253.
    torch.manual_seed(0)
    std = build_model("resnetap10", 10, 224).stem[0].weight.std().item()
    assert abs(std - math.sqrt(2 / (7 * 7 * 64))) < 0.001
    torch.manual_seed(0)
    small = build_model("resnet18", 10, 32)
    assert small.conv1.kernel_size == (3, 3) and isinstance(small.maxpool, torch.nn.Identity)
    assert abs(small.conv1.weight.std().item() - math.sqrt(2 / (3 * 3 * 64))) < 0.003
    assert isinstance(build_model("resnet18", 10, 128).maxpool, torch.nn.MaxPool2d)


def test_milestones_are_minimax_integer_epochs():
    # train.py: MultiStepLR(milestones=[2 * epochs // 3, 5 * epochs // 6]).
    for epochs in (3000, 2000, 1500, 1000, 500, 300, 1333, 7):
        assert milestone_epochs([0.6667, 0.8333], epochs) == [2 * epochs // 3, 5 * epochs // 6]


def test_augmentation_shapes_and_ranges():
    images = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    streams = randomness(0, torch.device("cpu"))
    batch = augment.train_batch(images, 32, 0.5, 0.4, 0.1, streams[0])
    assert batch.shape == (6, 3, 32, 32) and torch.isfinite(batch).all()
    mixed, a, b, lam = augment.cutmix(batch, torch.arange(6), 1.0, *streams)
    assert mixed.shape == batch.shape and 0 <= lam <= 1
    assert torch.equal(augment.cutmix(batch, torch.arange(6), 0.0, *streams)[0], batch)
    # the same streams give the same batch, and the global random state is left as it was
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = randomness(0, torch.device("cpu"))
    again = augment.cutmix(augment.train_batch(images, 32, 0.5, 0.4, 0.1, first[0]), torch.arange(6), 1.0, *first)
    assert torch.equal(torch.get_rng_state(), state), "augmentation drew from the global generator"
    second = randomness(0, torch.device("cpu"))
    twice = augment.cutmix(augment.train_batch(images, 32, 0.5, 0.4, 0.1, second[0]), torch.arange(6), 1.0, *second)
    assert torch.equal(again[0], twice[0]) and again[3] == twice[3]
    # a full-area, unflipped crop is the identity
    full = augment.random_resized_crop(images.float(), 40, streams[0], scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False)
    assert torch.allclose(full, images.float(), atol=1e-3)


def test_short_training_beats_chance_on_the_demo_split(tmp_path):
    root = tmp_path / "data"
    demo_data.write_demo(root, train_per_class=10, val_per_class=10, image_size=32, seed=0)
    train, val = [], []
    for label, cls in enumerate(demo_data.CLASSES):
        for split, bucket in (("train", train), ("val", val)):
            records, _ = index_class(root, split, cls, cls, [".png"], 10**6)
            bucket += [(root / r["image"], label) for r in records]
    train_x = image_tensor([p for p, _ in train], 32)
    test_x = image_tensor([p for p, _ in val], 32)
    settings = minimax_settings(epochs=40, batch_size=32, test_every=10, test_batch_size=500)

    def run_training():
        labels = torch.tensor([l for _, l in train]), torch.tensor([l for _, l in val])
        return train_and_test(train_x, labels[0], test_x, labels[1], "convnet6", 10, settings, seed=0, progress=False)

    result = run_training()
    assert result["top1_best"] > 40, f"chance is 10%: {result}"
    assert result["top1_best"] >= result["top1_last"] and result["best_epoch"] % 10 == 0
    again = run_training()
    assert again == result, "seeded training is repeatable"


def test_aggregation_on_hand_made_rows(tmp_path):
    rows = [
        # vlcp, IPC 10, resnetap10: 60, 62, 67 -> mean 63, population std sqrt(((-3)^2 + (-1)^2 + 4^2) / 3)
        {
            "protocol": "minimax",
            "method": "vlcp-prototype",
            "ipc": "10",
            "seed": 0,
            "model": "resnetap10",
            "eval_seed": 0,
            "top1_best": 60.0,
            "top1_last": 58.0,
        },
        {
            "protocol": "minimax",
            "method": "vlcp-prototype",
            "ipc": "10",
            "seed": 0,
            "model": "resnetap10",
            "eval_seed": 1,
            "top1_best": 62.0,
            "top1_last": 58.0,
        },
        {
            "protocol": "minimax",
            "method": "vlcp-prototype",
            "ipc": "10",
            "seed": 1,
            "model": "resnetap10",
            "eval_seed": 0,
            "top1_best": 67.0,
            "top1_last": 61.0,
        },
        {
            "protocol": "minimax",
            "method": "random",
            "ipc": "10",
            "seed": 0,
            "model": "resnetap10",
            "eval_seed": 0,
            "top1_best": 50.0,
            "top1_last": 49.0,
        },
        {
            "protocol": "minimax",
            "method": "random",
            "ipc": "2",
            "seed": 0,
            "model": "resnetap10",
            "eval_seed": 0,
            "top1_best": 30.0,
            "top1_last": 29.0,
        },
        {
            "protocol": "minimax",
            "method": "full",
            "ipc": "all",
            "seed": 0,
            "model": "resnetap10",
            "eval_seed": 0,
            "top1_best": 90.0,
            "top1_last": 89.0,
        },
    ]
    contract.write_accuracy(tmp_path / "a.csv", rows)
    summary = summarize(contract.read_accuracy(tmp_path / "a.csv"))
    vlcp = summary[(summary.method == "vlcp-prototype") & (summary.metric == "top1_best")].iloc[0]
    assert vlcp["mean"] == 63.0 and vlcp["std"] == round(math.sqrt(26 / 3), 2) == 2.94 and vlcp["runs"] == 3
    last = summary[(summary.method == "vlcp-prototype") & (summary.metric == "top1_last")].iloc[0]
    assert (last["mean"], last["std"]) == (59.0, round(math.sqrt(2), 2))
    table = markdown_table(summary, "top1_best").splitlines()
    assert table[0] == "| model | method | IPC 2 | IPC 10 | IPC all |"
    assert "| resnetap10 | vlcp-prototype | — | 63.0 ± 2.9 | — |" in table
    assert "| resnetap10 | random | 30.0 ± 0.0 | 50.0 ± 0.0 | — |" in table
    from vlcp.aggregate import run_count

    assert run_count(summary["runs"]) == "1 to 3 runs"
    assert run_count(summary[summary.method == "random"]["runs"]) == "1 run"
    assert run_count(summary[summary.method == "vlcp-prototype"]["runs"]) == "3 runs"


def test_a_set_smaller_than_its_ipc_is_named_in_the_summary(tmp_path):
    from vlcp.aggregate import short_sets, write_markdown

    # a class of 60 images at IPC 100: random takes the 60, so its set holds 960 of 10 x 100 images
    base = {
        "protocol": "minimax",
        "seed": 0,
        "model": "convnet6",
        "eval_seed": 0,
        "top1_best": 50.0,
        "top1_last": 50.0,
        "test_images": 500,
        "classes": 10,
    }
    rows = [
        {**base, "method": "random", "ipc": "100", "train_images": 960},
        {**base, "method": "random", "ipc": "100", "train_images": 960, "eval_seed": 1},
        {**base, "method": "vlcp-prototype", "ipc": "100", "train_images": 1000},
        {**base, "method": "full", "ipc": "all", "train_images": 9000},
    ]
    contract.write_accuracy(tmp_path / "a.csv", rows)
    frame = contract.read_accuracy(tmp_path / "a.csv")
    assert short_sets(frame) == ["random at IPC 100, seed 0: 960 images, not 1000 (100 x 10 classes)"]
    write_markdown(tmp_path / "summary.md", scores.add_scores(summarize(frame))[0], short=short_sets(frame))
    assert "### Sets smaller than their IPC" in (tmp_path / "summary.md").read_text()
    assert short_sets(frame.drop(columns="classes")) == [], "rows from before the column are not judged"


def test_the_files_the_index_rejected_are_counted_in_the_summary_and_at_the_end_of_the_run(tmp_path):
    from vlcp.aggregate import rejected_note, run_end, write_markdown

    run = tmp_path / "results" / "t"
    rejected = [("train/cat/a.txt", "not an image extension"), ("train/dog/b.png", "empty file")]
    rejected.append(("val/cat/c.jpg", "corrupt or truncated: ..."))
    contract.write_rejected(run / "index" / "rejected.tsv", rejected)
    base = {"protocol": "minimax", "method": "random", "ipc": "1", "seed": 0, "model": "convnet6", "eval_seed": 0}
    rows = [{**base, "top1_best": 50.0, "top1_last": 50.0, "test_images": 20, "train_images": 2, "classes": 2}]
    contract.write_accuracy(tmp_path / "a.csv", rows)
    scored = scores.add_scores(summarize(contract.read_accuracy(tmp_path / "a.csv")))[0]
    write_markdown(run / "summary.md", scored, rejected=rejected_note(rejected))
    text = (run / "summary.md").read_text()
    assert "### Files left out\n\nThe index stage rejected 3 file(s) of the dataset (2 in train/, 1 in val/)" in text
    assert "`index/rejected.tsv` beside this file lists each with its reason" in text
    said = run_end(run).splitlines()
    assert said[0] == f"{run / 'summary.md'}: the accuracy tables"
    assert said[-1].startswith("The index stage rejected 3 file(s) of the dataset (2 in train/, 1 in val/)")
    assert f"`{run / 'index' / 'rejected.tsv'}` lists each" in said[-1]
    (run / "index" / "rejected.tsv").unlink()
    contract.write_rejected(run / "index" / "rejected.tsv", [])
    assert run_end(run) == f"{run / 'summary.md'}: the accuracy tables", "nothing rejected, nothing said"


def minimax_color_jitter(img, factors, order):
    """Minimax's ColorJitter of one image (misc/utils.py), with given factors f = 1 - alpha and order:
    Brightness lerps to black, Contrast to the mean of Grayscale, Saturation to Grayscale, where Grayscale is
    0.299 R + 0.587 G + 0.114 B; img.lerp(ref, alpha) with no clamping."""
    for op in order:
        alpha = 1 - float(factors[op])
        gray = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).expand(3, -1, -1)
        ref = [torch.zeros_like(img), torch.full_like(img, gray.mean().item()), gray][op]
        img = img.lerp(ref, alpha)
    return img


def test_colour_jitter_is_minimax_per_image():
    images = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    jittered = augment.color_jitter(images, 0.4, torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    factors = torch.empty(3, 8).uniform_(0.6, 1.4, generator=generator)  # the draws color_jitter makes, in its order
    order = torch.argsort(torch.rand(8, 3, generator=generator), dim=1)
    assert len({tuple(o.tolist()) for o in order}) > 2, "the order differs between images"
    for i in range(8):
        expected = minimax_color_jitter(images[i], factors[:, i], order[i].tolist())
        torch.testing.assert_close(jittered[i], expected, atol=1e-5, rtol=1e-5)  # float rounding only
    bright = torch.ones(64, 3, 4, 4)
    assert augment.color_jitter(bright, 0.4, generator).max() > 1.2, "Minimax does not clamp between steps"


def test_crop_boxes_follow_torchvision_random_resized_crop():
    import torchvision.transforms as T

    top, left, h, w = augment.crop_boxes(20000, 224, 224, (0.5, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0))
    assert ((h >= 1) & (h <= 224) & (w >= 1) & (w <= 224)).all()
    assert ((top >= 0) & (top + h <= 224) & (left >= 0) & (left + w <= 224)).all()
    assert torch.equal(h, h.round()) and torch.equal(top, top.round())
    torch.manual_seed(0)
    reference = torch.tensor(
        [T.RandomResizedCrop.get_params(torch.zeros(3, 224, 224), [0.5, 1.0], [3 / 4, 4 / 3]) for _ in range(20000)],
        dtype=torch.float,
    )
    ours = torch.stack([top, left, h, w], 1)
    # the same distribution: means and spreads of top, left, height and width agree within sampling error
    torch.testing.assert_close(ours.mean(0), reference.mean(0), atol=1.0, rtol=0)
    torch.testing.assert_close(ours.std(0), reference.std(0), atol=1.0, rtol=0)
    # boxes that do not fit are redrawn, not clamped: no pile-up at the full side
    assert (w == 224).float().mean() < 0.05 and (h == 224).float().mean() < 0.05
    # a 10:1 image lets no draw fit, so the fallback is torchvision's centre crop of the widest allowed aspect
    t, l, fh, fw = augment.crop_boxes(4, 10, 100, (0.9, 1.0), (3 / 4, 4 / 3), torch.Generator())
    assert fh.tolist() == [10] * 4 and fw.tolist() == [round(10 * 4 / 3)] * 4
    assert t.tolist() == [0] * 4 and l.tolist() == [(100 - 13) // 2] * 4


def torchvision_crops(images, boxes, size, flipped):
    """torchvision's bilinear resized_crop (no antialiasing) and horizontal flip, one image at a time."""
    from torchvision.transforms.v2 import functional as TF

    crops = [
        TF.resized_crop(img, t, l, h, w, [size, size], antialias=False)
        for img, (t, l, h, w) in zip(images, boxes.long().tolist())
    ]
    return torch.stack([TF.horizontal_flip(c) if f else c for c, f in zip(crops, flipped)])


def test_resized_crops_are_torchvision_resized_crop_and_read_only_their_box():
    images = torch.rand(5, 3, 16, 20, generator=torch.Generator().manual_seed(0))
    # (top, left, height, width): corners of the image, inside it, the whole image, one pixel
    boxes = torch.tensor([[0, 0, 5, 7], [3, 2, 9, 4], [11, 13, 5, 7], [0, 0, 16, 20], [7, 19, 1, 1]]).float()
    mixed = torch.tensor([False, True, False, True, True])
    fenced = torch.full_like(images, 1e6)  # every pixel outside its image's box
    for i, (t, l, h, w) in enumerate(boxes.long().tolist()):
        fenced[i, :, t : t + h, l : l + w] = images[i, :, t : t + h, l : l + w]
    for flipped in (torch.zeros(5, dtype=torch.bool), mixed, ~mixed):
        # upsampling (every box smaller than the output), where antialiasing changes nothing
        ours = augment.resized_crops(images, *boxes.T, 24, flipped)
        torch.testing.assert_close(ours, torchvision_crops(images, boxes, 24, flipped), atol=1e-5, rtol=0)
        for size in (24, 3):
            assert augment.resized_crops(fenced, *boxes.T, size, flipped).max() <= 1, "read outside a box"


def test_random_resized_crop_is_torchvision_with_its_boxes_and_flips():
    images = torch.rand(16, 3, 16, 20, generator=torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(2)
    replay = torch.Generator()
    replay.set_state(generator.get_state())
    ours = augment.random_resized_crop(images, 24, generator)
    boxes = torch.stack(augment.crop_boxes(16, 16, 20, (0.5, 1.0), (3 / 4, 4 / 3), replay), 1)
    flipped = torch.rand(16, generator=replay) < 0.5  # the draws random_resized_crop makes, in its order
    assert 0 < flipped.sum() < 16
    torch.testing.assert_close(ours, torchvision_crops(images, boxes, 24, flipped), atol=1e-5, rtol=0)
    # uint8 batches are cropped before conversion: the same crops on the 0-255 scale
    pixels = torch.randint(0, 256, (16, 3, 16, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    replay.set_state(torch.Generator().manual_seed(2).get_state())
    crops = augment.random_resized_crop(pixels, 24, replay)
    assert crops.dtype == torch.float32 and crops.is_contiguous()
    torch.testing.assert_close(crops, torchvision_crops(pixels.float(), boxes, 24, flipped), atol=5e-4, rtol=0)


def test_image_tensor_is_resize_and_centre_crop(tmp_path):
    import torchvision.transforms as T
    from PIL import Image

    rng = torch.Generator().manual_seed(0)
    path = tmp_path / "wide.png"
    Image.fromarray(torch.randint(0, 256, (300, 400, 3), generator=rng, dtype=torch.uint8).numpy()).save(path)
    # data.py transform_imagenet(size=224): Resize(224) + CenterCrop(224), for train and test images alike
    expected = T.Compose([T.Resize(224), T.CenterCrop(224), T.PILToTensor()])(Image.open(path).convert("RGB"))
    got = image_tensor([path], 224)
    assert got.shape == (1, 3, 224, 224) and torch.equal(got[0], expected)


def test_evaluation_logs_upsampled_inputs(tmp_path, capsys):
    from vlcp.evaluate import main

    root = tmp_path / "data"
    demo_data.write_demo(root, train_per_class=2, val_per_class=2, image_size=32, seed=0)
    val = []
    for cls in demo_data.CLASSES:
        records, _ = index_class(root, "val", cls, cls, [".png"], 10**6)
        contract.write_index(tmp_path / f"{cls}.jsonl", records)
        val.append(str(tmp_path / f"{cls}.jsonl"))
    args = [
        "--train-dir",
        str(root / "train"),
        "--val-index",
        *val,
        "--root",
        str(root),
        "--model",
        "convnet6",
        "--seed",
        "0",
        "--method",
        "random",
        "--ipc",
        "2",
        "--distill-seed",
        "0",
        "--epochs",
        "1",
        "--batch-size",
        "20",
        "--learning-rate",
        "0.01",
        "--weight-decay",
        "5e-4",
        "--test-every",
        "1",
    ]
    main([*args, "--input-size", "64", "--out", str(tmp_path / "a.csv")])
    assert (
        "the train images are 32 px and evaluate.input_size is 64: every image is upsampled" in capsys.readouterr().err
    )
    assert contract.read_accuracy(tmp_path / "a.csv").iloc[0]["input_size"] == 64
    main([*args, "--input-size", "32", "--out", str(tmp_path / "b.csv")])
    assert "upsampled" not in capsys.readouterr().err


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


def test_the_reports_first_table_has_the_papers_number_beside_a_matching_cell():
    import pandas as pd

    from vlcp.aggregate import landing_rows

    row = {"protocol": "minimax", "model": "convnet6", "metric": "top1_best", "runs": 3}
    summary = pd.DataFrame(
        [
            {
                **row,
                "method": "vlcp-prototype",
                "ipc": "10",
                "mean": 62.04,
                "std": 1.0,
                "paper_mean": 64.8,
                "paper_std": 3.6,
            },
            {
                **row,
                "method": "vlcp-prototype",
                "ipc": "50",
                "mean": 70.0,
                "std": 0.5,
                "paper_mean": None,
                "paper_std": None,
            },
            {**row, "method": "random", "ipc": "10", "mean": 50.0, "std": 2.0, "paper_mean": None, "paper_std": None},
            {**row, "method": "random", "ipc": "10", "mean": 49.0, "std": 2.0, "metric": "top1_last"},
        ]
    )
    assert landing_rows(summary) == [
        ["protocol", "model", "method", "IPC 10", "IPC 50", "runs"],
        ["minimax", "convnet6", "random", "50.0 ± 2.0", "—", "3 runs"],
        ["minimax", "convnet6", "vlcp-prototype", "62.0 ± 1.0 (paper 64.8 ± 3.6)", "70.0 ± 0.5", "3 runs"],
    ]
