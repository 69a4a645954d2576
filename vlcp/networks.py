"""The evaluation classifiers of the Minimax protocol: ConvNet-6, ResNetAP-10 and ResNet-18.

Instance norm is ``GroupNorm(C, C)`` (one group per channel, affine), as the
authors use it; batch norm is the option. Inputs of 64 px and more get the
ImageNet stem (7x7 stride-2 convolution and max-pool); smaller inputs (CIFAR,
the demo) a 3x3 stride-1 stem, as is usual for 32 px images.
"""

import torch
from torch import nn

MODELS = ("convnet6", "resnetap10", "resnet18")


def norm_layer(kind):
    """A constructor ``channels -> module`` for 'instance' (GroupNorm(C, C)) or 'batch' norm."""
    if kind == "instance":
        return lambda channels: nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d
    raise ValueError(f"unknown norm {kind!r}; use 'instance' or 'batch'")


class ConvNet(nn.Module):
    """``depth`` blocks of conv 3x3 (``width`` channels), norm, ReLU and 2x2 average pooling, then a linear layer.

    Pooling stops at a 2 px feature map, so ConvNet-6 also runs on 32 px inputs (instance norm over a
    single pixel would output zeros).
    """

    def __init__(self, num_classes, input_size, depth=6, width=128, norm="instance"):
        super().__init__()
        layers, channels, size = [], 3, input_size
        make_norm = norm_layer(norm)
        for _ in range(depth):
            layers += [nn.Conv2d(channels, width, 3, padding=1), make_norm(width), nn.ReLU(inplace=True)]
            if size >= 4:
                layers.append(nn.AvgPool2d(2))
                size //= 2
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * size * size, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class BasicBlockAP(nn.Module):
    """ResNet basic block whose stride-2 downsampling is a 2x2 average pool after the first conv."""

    expansion = 1

    def __init__(self, in_channels, channels, stride, make_norm):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.pool = nn.AvgPool2d(2) if stride == 2 else nn.Identity()
        self.bn1 = make_norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = make_norm(channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, bias=False),
                nn.AvgPool2d(2) if stride == 2 else nn.Identity(),
                make_norm(channels),
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.pool(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNetAP(nn.Module):
    """ResNet with average-pool downsampling (ResNetAP); ``blocks=(1, 1, 1, 1)`` is ResNetAP-10."""

    def __init__(self, num_classes, input_size, blocks=(1, 1, 1, 1), norm="instance"):
        super().__init__()
        make_norm = norm_layer(norm)
        if input_size >= 64:
            self.stem = nn.Sequential(
                nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), make_norm(64), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1, bias=False), make_norm(64), nn.ReLU(inplace=True))
        layers, channels = [], 64
        for stage, count in enumerate(blocks):
            width = 64 * 2**stage
            for i in range(count):
                layers.append(BasicBlockAP(channels, width, 2 if (stage > 0 and i == 0) else 1, make_norm))
                channels = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def resnet18(num_classes, input_size, norm="instance"):
    """torchvision's ResNet-18 with the chosen norm; small inputs get the 3x3 stem and no max-pool."""
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(num_classes=num_classes, norm_layer=norm_layer(norm))
    if input_size < 64:
        model.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def build_model(name, num_classes, input_size, norm="instance"):
    """One of MODELS, freshly initialised from the current torch seed."""
    if name == "convnet6":
        return ConvNet(num_classes, input_size, depth=6, norm=norm)
    if name == "resnetap10":
        return ResNetAP(num_classes, input_size, blocks=(1, 1, 1, 1), norm=norm)
    if name == "resnet18":
        return resnet18(num_classes, input_size, norm=norm)
    raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")
