"""Stage 8-9: the classifiers, the device-resident training, and the aggregation."""

import math

import pytest
import torch

from vlcp import augment, contract, demo_data
from vlcp.aggregate import markdown_table, summarize
from vlcp.evaluate import eval_resize, image_tensor, train_and_test
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
    # ResNetAP-10: ResNet-18's stem and stages with one basic block each, 1x1 shortcut convs where the
    # width changes (no bias), average pools instead of strides.
    stem = 3 * 64 * 49 + 2 * 64
    blocks = 0
    for c_in, c in ((64, 64), (64, 128), (128, 256), (256, 512)):
        blocks += c_in * c * 9 + c * c * 9 + 4 * c
        if c_in != c:
            blocks += c_in * c + 2 * c
    assert parameters(build_model("resnetap10", 10, 224)) == stem + blocks + 512 * 10 + 10


def test_augmentation_shapes_and_ranges():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 40, 40), dtype=torch.uint8)
    batch = augment.train_batch(images, 32, 0.5, 0.4, 0.1)
    assert batch.shape == (6, 3, 32, 32) and torch.isfinite(batch).all()
    mixed, a, b, lam = augment.cutmix(batch, torch.arange(6), 1.0)
    assert mixed.shape == batch.shape and 0 <= lam <= 1
    assert torch.equal(augment.cutmix(batch, torch.arange(6), 0.0)[0], batch)
    # a full-area, unflipped crop is the identity
    full = augment.random_resized_crop(images.float(), 40, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=False)
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
    test_x = image_tensor([p for p, _ in val], eval_resize(32), 32)
    settings = {
        "epochs": 40, "batch_size": 32, "learning_rate": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
        "milestones": [2 / 3, 5 / 6], "gamma": 0.2, "rrc_scale_min": 0.5, "color_jitter": 0.4, "lighting": 0.1,
        "cutmix_beta": 1.0, "input_size": 32, "norm": "instance", "test_every": 10, "test_batch_size": 500,
    }
    result = train_and_test(train_x, torch.tensor([l for _, l in train]), test_x, torch.tensor([l for _, l in val]),
                            "convnet6", 10, settings, seed=0, progress=False)
    assert result["top1_best"] > 40, f"chance is 10%: {result}"
    assert result["top1_best"] >= result["top1_last"] and result["best_epoch"] % 10 == 0
    again = train_and_test(train_x, torch.tensor([l for _, l in train]), test_x, torch.tensor([l for _, l in val]),
                           "convnet6", 10, settings, seed=0, progress=False)
    assert again == result, "seeded training is repeatable"


def test_aggregation_on_hand_made_rows(tmp_path):
    rows = [
        # vlcp, IPC 10, resnetap10: 60, 62, 67 -> mean 63, population std sqrt(((-3)^2 + (-1)^2 + 4^2) / 3)
        {"method": "vlcp-prototype", "ipc": "10", "seed": 0, "model": "resnetap10", "eval_seed": 0, "top1_best": 60.0, "top1_last": 58.0},
        {"method": "vlcp-prototype", "ipc": "10", "seed": 0, "model": "resnetap10", "eval_seed": 1, "top1_best": 62.0, "top1_last": 58.0},
        {"method": "vlcp-prototype", "ipc": "10", "seed": 1, "model": "resnetap10", "eval_seed": 0, "top1_best": 67.0, "top1_last": 61.0},
        {"method": "random", "ipc": "10", "seed": 0, "model": "resnetap10", "eval_seed": 0, "top1_best": 50.0, "top1_last": 49.0},
        {"method": "random", "ipc": "2", "seed": 0, "model": "resnetap10", "eval_seed": 0, "top1_best": 30.0, "top1_last": 29.0},
        {"method": "full", "ipc": "all", "seed": 0, "model": "resnetap10", "eval_seed": 0, "top1_best": 90.0, "top1_last": 89.0},
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


def test_colour_jitter_matches_torchvision_per_image():
    import torchvision.transforms.functional as TF

    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(3)
    jittered = augment.color_jitter(images, 0.4)
    torch.manual_seed(3)
    factors = torch.empty(3, 4).uniform_(0.6, 1.4)  # the draw color_jitter makes, in its order
    for i in range(4):
        expected = TF.adjust_brightness(images[i], float(factors[0, i]))
        expected = TF.adjust_contrast(expected, float(factors[1, i]))
        expected = TF.adjust_saturation(expected, float(factors[2, i]))
        torch.testing.assert_close(jittered[i], expected, atol=1e-4, rtol=1e-4)  # float rounding only
    torch.testing.assert_close(augment.grayscale(images), TF.rgb_to_grayscale(images), atol=1e-6, rtol=1e-6)
