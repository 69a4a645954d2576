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
        blocks = lambda x: sorted(tuple(x[:, r:r + 4, c:c + 4].flatten().tolist()) for r in (0, 4) for c in (0, 4))  # noqa: E731
        assert blocks(shuffled[i]) == blocks(images[i]), "the 2 x 2 patches are moved whole"
    orders = {tuple(rded.shuffle_patches(images, 2, generator)[0, 0, 0, :].tolist()) for _ in range(20)}
    assert len(orders) > 1, "the order is random"
    assert torch.equal(rded.shuffle_patches(images, 1, generator), images)
    # a width that factor does not divide: RDED's strips are side // factor wide, the remainder dropped
    odd = torch.arange(1 * 1 * 6 * 7, dtype=torch.float).reshape(1, 1, 6, 7)
    cut = rded.shuffle_patches(odd, 2, generator)
    assert cut.shape == (1, 1, 6, 6) and not (cut == 6).any(), "column 6 (the remainder) is dropped"


@pytest.mark.parametrize("ipc,classes,batch", [
    (10, 1000, 100), (50, 1000, 200), (1, 1000, 20),  # argument.py: 50/100/10, x2 for 1000 classes
    (10, 10, 50), (50, 10, 100), (1, 10, 10), (10, 100, 100),
    (5, 10, 10), (20, 10, 50),  # IPCs RDED leaves undefined: the entry of the largest listed IPC below
    (1, 5, 5),  # at most IPC x classes
])
def test_the_batch_size_rule(ipc, classes, batch):
    from vlcp.config import rded_batch_size

    assert rded_batch_size(ipc, classes) == batch


def test_the_teacher_loader_takes_plain_tensors_only(tmp_path):
    from safetensors.torch import save_file

    teacher = rded.build_network("resnet18", 10, 32)
    torch.save(teacher.state_dict(), tmp_path / "state.pth")
    save_file(teacher.state_dict(), tmp_path / "state.safetensors")
    for name in ("state.pth", "state.safetensors"):
        loaded = rded.load_teacher(tmp_path / name, "resnet18", 10, 32)
        assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
        assert torch.equal(loaded.fc.weight, teacher.fc.weight)
    torch.save(teacher, tmp_path / "module.pth")  # a whole pickled module: refused, never unpickled
    with pytest.raises(rded.TeacherError, match=r"module.pth are not a file of plain tensors"):
        rded.load_teacher(tmp_path / "module.pth", "resnet18", 10, 32)
    torch.save({"fc.weight": 1}, tmp_path / "numbers.pth")
    with pytest.raises(rded.TeacherError, match=r"numbers.pth do not hold a state dict"):
        rded.load_teacher(tmp_path / "numbers.pth", "resnet18", 10, 32)
    with pytest.raises(rded.TeacherError, match=r"do not fit a resnet18 of 100 classes"):
        rded.load_teacher(tmp_path / "state.safetensors", "resnet18", 100, 32)
    with pytest.raises(rded.TeacherError, match=r"no such file"):
        rded.load_teacher(tmp_path / "missing.safetensors", "resnet18", 10, 32)


def test_the_students_are_torchvisions_resnet18_and_rdeds_modified_one():
    large, small = rded.build_network("resnet18", 10, 224), rded.build_network("resnet18", 10, 32)
    assert large.conv1.kernel_size == (7, 7) and isinstance(large.maxpool, torch.nn.MaxPool2d)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1) and isinstance(small.maxpool, torch.nn.Identity)
    groups = rded.decay_groups(small, 0.01)
    assert all(p.dim() > 1 for p in groups[0]["params"]) and groups[1]["weight_decay"] == 0.0
    assert all(p.dim() == 1 for p in groups[1]["params"]), "biases and norm parameters take no weight decay"
