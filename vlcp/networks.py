"""The evaluation classifiers of the Minimax protocol: ConvNet-6, ResNetAP-10 and ResNet-18.

Built as MinimaxDiffusion's ``train_models/`` builds them for ImageNet-style
data (``dataset='imagenet'``, ``size`` = the input side): instance norm is
``GroupNorm(C, C)`` (one group per channel, affine), batch norm the option.
The ResNets choose their stem by input size as Minimax does: above 128 px the
'large' stem, above 64 px the 'mid' one, else the 'small' one (no pooling), and
initialise every convolution from N(0, sqrt(2 / fan_out)).
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from vlcp.names import MODELS  # noqa: F401  (vlcp.networks.MODELS, as before)


def norm_layer(kind):
    """A constructor ``channels -> module`` for 'instance' (GroupNorm(C, C)) or 'batch' norm."""
    if kind == "instance":
        return lambda channels: nn.GroupNorm(channels, channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d
    raise ValueError(f"unknown norm {kind!r}; use 'instance' or 'batch'")


def stem_size(input_size):
    """Minimax's ``net_size`` of an ImageNet-style ResNet: 'small' up to 64 px, 'mid' up to 128, else 'large'."""
    return "small" if input_size <= 64 else "mid" if input_size <= 128 else "large"


def minimax_init(model):
    """Convolutions from N(0, sqrt(2 / (k * k * out_channels))), norms weight 1 and bias 0, in module
    order (``ResNet.__init__`` and ``ResNetAP.__init__`` of Minimax's train_models)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            module.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            module.weight.data.fill_(1)
            module.bias.data.zero_()
    return model


class ConvNet(nn.Module):
    """``depth`` blocks of conv 3x3 (``width`` channels, with bias), norm, ReLU and 2x2 average pooling,
    then a linear layer on the flattened map (Minimax's ``convnet.py``, default initialisation).

    Minimax pools after every block, so its ConvNet-6 has no feature left at 32 px; here pooling stops at
    a 2 px map, so ConvNet-6 also runs on 32 px inputs. At 224 px the two are the same network.
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


def resnet_ap_stem(input_size, make_norm, channels=64):
    """ResNetAP's IntroBlock: 7x7 conv (stride 1), norm, ReLU, 4x4 average pool above 128 px;
    3x3 conv and a 2x2 pool above 64 px; 3x3 conv and no pool below."""
    size = stem_size(input_size)
    kernel = 7 if size == "large" else 3
    layers = [
        nn.Conv2d(3, channels, kernel, padding=kernel // 2, bias=False),
        make_norm(channels),
        nn.ReLU(inplace=True),
    ]
    if size != "small":
        layers.append(nn.AvgPool2d(4 if size == "large" else 2))
    return nn.Sequential(*layers)


class BasicBlockAP(nn.Module):
    """ResNetAP's basic block: conv, norm, ReLU, then the stride as an average pool, conv, norm; the
    shortcut (where the shape changes) is a 1x1 conv, the average pool, norm."""

    def __init__(self, in_channels, channels, stride, make_norm):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.bn1 = make_norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = make_norm(channels)
        self.stride = stride
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, bias=False),
                nn.AvgPool2d(stride) if stride != 1 else nn.Identity(),
                make_norm(channels),
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        if self.stride != 1:
            out = F.avg_pool2d(out, self.stride)
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNetAP(nn.Module):
    """ResNet with average-pool downsampling (Minimax's ``resnet_ap.py``); ``blocks=(1, 1, 1, 1)`` is
    ResNetAP-10: 3.64 GFLOPs at 224 px."""

    def __init__(self, num_classes, input_size, blocks=(1, 1, 1, 1), norm="instance"):
        super().__init__()
        make_norm = norm_layer(norm)
        self.stem = resnet_ap_stem(input_size, make_norm)
        layers, channels = [], 64
        for stage, count in enumerate(blocks):
            width = 64 * 2**stage
            for i in range(count):
                layers.append(BasicBlockAP(channels, width, 2 if (stage > 0 and i == 0) else 1, make_norm))
                channels = width
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)
        minimax_init(self)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def resnet18(num_classes, input_size, norm="instance"):
    """torchvision's ResNet-18 with the chosen norm, which is Minimax's ``resnet.py`` 'large' net; at
    128 px and below its stem is a 3x3 stride-1 conv, with the max-pool kept above 64 px ('mid')."""
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(num_classes=num_classes, norm_layer=norm_layer(norm))
    size = stem_size(input_size)
    if size != "large":
        model.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
    if size == "small":
        model.maxpool = nn.Identity()
    return minimax_init(model)


def build_model(name, num_classes, input_size, norm="instance"):
    """One of MODELS, freshly initialised from the current torch seed."""
    if name == "convnet6":
        return ConvNet(num_classes, input_size, depth=6, norm=norm)
    if name == "resnetap10":
        return ResNetAP(num_classes, input_size, blocks=(1, 1, 1, 1), norm=norm)
    if name == "resnet18":
        return resnet18(num_classes, input_size, norm=norm)
    raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")
