"""RDED's soft-label protocol (LINs-lab/RDED validation/main.py, validation/utils.py, argument.py)."""

import math

import pytest
import torch

from vlcp import rded


def test_the_loss_is_batchmean_kl_of_softened_predictions_by_hand():
    # validation/main.py: KLDivLoss(batchmean)(log_softmax(student / T), softmax(teacher / T)), no T^2
    student = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64)
    teacher = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    t = 20.0
    total = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist()):
        q = [math.exp(v / t) / sum(math.exp(w / t) for w in s_row) for v in s_row]
        p = [math.exp(v / t) / sum(math.exp(w / t) for w in t_row) for v in t_row]
        total += sum(pj * (math.log(pj) - math.log(qj)) for pj, qj in zip(p, q))
    assert math.isclose(rded.distillation_loss(student, teacher, t).item(), total / 2, rel_tol=1e-12)


def test_the_schedule_is_a_half_cosine_stepped_per_epoch():
    # main.py: LambdaLR(lambda step: 0.5 * (1.0 + cos(pi * step / re_epochs / 2)) if step <= re_epochs else 0)
    assert rded.lr_factor(0, 300) == 1.0
    assert math.isclose(rded.lr_factor(150, 300), 0.5 * (1 + math.cos(math.pi / 4)))
    assert math.isclose(rded.lr_factor(300, 300), 0.5) and rded.lr_factor(301, 300) == 0.0
    # tested every 10 epochs past 80 % and after the last (main.py's epoch loop)
    assert [e for e in range(300) if rded.is_test_epoch(e, 300)] == [249, 259, 269, 279, 289, 299]
    assert [e for e in range(7) if rded.is_test_epoch(e, 7)] == [6]


def test_shuffle_patches_permutes_whole_patches():
    generator = torch.Generator().manual_seed(0)
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float).reshape(2, 3, 8, 8)
    shuffled = rded.shuffle_patches(images, 2, generator)
    assert shuffled.shape == images.shape
    for i in range(2):
        assert torch.equal(shuffled[i].flatten().sort().values, images[i].flatten().sort().values), "pixels kept"
        blocks = lambda x: sorted(tuple(x[:, r : r + 4, c : c + 4].flatten().tolist()) for r in (0, 4) for c in (0, 4))  # noqa: E731
        assert blocks(shuffled[i]) == blocks(images[i]), "the 2 x 2 patches are moved whole"
    orders = {tuple(rded.shuffle_patches(images, 2, generator)[0, 0, 0, :].tolist()) for _ in range(20)}
    assert len(orders) > 1, "the order is random"
    assert torch.equal(rded.shuffle_patches(images, 1, generator), images)
    # a width that factor does not divide: RDED's strips are side // factor wide, the remainder dropped
    odd = torch.arange(1 * 1 * 6 * 7, dtype=torch.float).reshape(1, 1, 6, 7)
    cut = rded.shuffle_patches(odd, 2, generator)
    assert cut.shape == (1, 1, 6, 6) and not (cut == 6).any(), "column 6 (the remainder) is dropped"


@pytest.mark.parametrize(
    "ipc,classes,batch",
    [
        (10, 1000, 100),
        (50, 1000, 200),
        (1, 1000, 20),  # argument.py: 50/100/10, x2 for 1000 classes
        (10, 10, 50),
        (50, 10, 100),
        (1, 10, 10),
        (10, 100, 100),
        (5, 10, 10),
        (20, 10, 50),  # IPCs RDED leaves undefined: the entry of the largest listed IPC below
        (1, 5, 5),  # at most IPC x classes
    ],
)
def test_the_batch_size_rule(ipc, classes, batch):
    from vlcp.config import rded_batch_size

    assert rded_batch_size(ipc, classes) == batch


def test_the_teacher_loader_takes_every_layout_of_plain_tensors(tmp_path):
    import argparse

    from safetensors.torch import save_file

    teacher = rded.build_network("resnet18", 10, 32)
    state = teacher.state_dict()
    layouts = {
        "state.pth": state,
        "state.safetensors": state,
        # RDED's observers: synthesize/utils.py line 240 reads torch.load(path)["model"]
        "rded.pth": {"model": state},
        "lightning.pth": {"state_dict": state, "epoch": 90},
        # saved from a DataParallel model (validation/main.py line 66 wraps both networks in one)
        "parallel.pth": {"model": {f"module.{k}": v for k, v in state.items()}},
    }
    for name, content in layouts.items():
        if name.endswith(".safetensors"):
            save_file(content, tmp_path / name)
        else:
            torch.save(content, tmp_path / name)
        loaded = rded.load_teacher(tmp_path / name, "resnet18", 10, 32)
        assert not loaded.training and not any(p.requires_grad for p in loaded.parameters()), name
        assert torch.equal(loaded.fc.weight, teacher.fc.weight) and torch.equal(
            loaded.conv1.weight, teacher.conv1.weight
        ), name

    # torchvision's reference training script saves its args beside the weights: refused, never unpickled,
    # with the one line that saves the weights alone
    torch.save({"model": state, "args": argparse.Namespace(lr=0.1)}, tmp_path / "reference.pth")
    with pytest.raises(rded.TeacherError, match=r"reference.pth pickle more than tensors") as info:
        rded.load_teacher(tmp_path / "reference.pth", "resnet18", 10, 32)
    assert "torch.save(c.get('model'" in str(info.value) and "reference.pth.weights.pth" in str(info.value)
    torch.save(teacher, tmp_path / "module.pth")  # a whole pickled module
    with pytest.raises(rded.TeacherError, match=r"module.pth pickle more than tensors"):
        rded.load_teacher(tmp_path / "module.pth", "resnet18", 10, 32)
    torch.save({"fc.weight": 1}, tmp_path / "numbers.pth")
    with pytest.raises(rded.TeacherError, match=r"numbers.pth hold no state dict .*found: 'fc.weight'"):
        rded.load_teacher(tmp_path / "numbers.pth", "resnet18", 10, 32)
    with pytest.raises(rded.TeacherError, match=r"do not fit a resnet18 of 100 classes"):
        rded.load_teacher(tmp_path / "rded.pth", "resnet18", 100, 32)
    with pytest.raises(rded.TeacherError, match=r"no such file"):
        rded.load_teacher(tmp_path / "missing.safetensors", "resnet18", 10, 32)
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(rded.TeacherError, match=r"text.pth"):
        rded.load_teacher(tmp_path / "text.pth", "resnet18", 10, 32)


def test_the_students_are_torchvisions_resnet18_and_rdeds_modified_one():
    large, small = rded.build_network("resnet18", 10, 224), rded.build_network("resnet18", 10, 32)
    assert large.conv1.kernel_size == (7, 7) and isinstance(large.maxpool, torch.nn.MaxPool2d)
    assert (
        small.conv1.kernel_size == (3, 3)
        and small.conv1.stride == (1, 1)
        and isinstance(small.maxpool, torch.nn.Identity)
    )
    groups = rded.decay_groups(small, 0.01)
    assert all(p.dim() > 1 for p in groups[0]["params"]) and groups[1]["weight_decay"] == 0.0
    assert all(p.dim() == 1 for p in groups[1]["params"]), "biases and norm parameters take no weight decay"


def test_the_students_no_grad_pass_sees_the_mixed_batch():
    # RDED's CutMix pastes into the batch in place (validation/utils.py line 143), and train() runs
    # student_model(images) after mix_aug (validation/main.py lines 211-213): the same mixed batch the
    # teacher labels and the student learns from
    from vlcp.evaluate import randomness

    student, teacher = rded.build_network("convnet6", 3, 32), rded.build_network("convnet6", 3, 32).eval()
    seen = []
    student.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    teacher.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().clone()))
    settings = {
        "input_size": 32,
        "factor": 1,
        "cutmix": 1.0,
        "temperature": 20,
        "precision": "float32",
        "learning_rate": 1e-3,
        "weight_decay": 0.01,
    }
    batch = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    rded.soft_label_step(
        student,
        teacher,
        rded.soft_label_optimizer(student, settings),
        batch,
        settings,
        randomness(0, torch.device("cpu")),
    )
    no_grad_pass, teacher_input, learning_pass = seen
    assert torch.equal(no_grad_pass, teacher_input) and torch.equal(no_grad_pass, learning_pass)
    unmixed = rded.train_batch(batch, 32, 1, randomness(0, torch.device("cpu"))[0])
    assert not torch.equal(no_grad_pass, unmixed), "CutMix pasted a box from another image"
