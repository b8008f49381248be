"""SEW-ResNet-18 from spikingjelly with a 2-channel stem for polarity frames.

spikingjelly's ``sew_resnet18`` is kept as is (torchvision topology, BasicBlocks
[2, 2, 2, 2], ADD connections); only its 3-channel RGB stem is replaced by a
2-channel conv of the same shape, and the whole net runs in multi-step mode.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import functional, layer, neuron, surrogate
from spikingjelly.activation_based.model import sew_resnet

from neuromoco.models.base import SpikingBackbone


class SEWResNet18(SpikingBackbone):
    """SEW-ResNet-18, LIF neurons, multi-step; features are the pooled 512-d map per step.

    The read-out is spikingjelly's non-spiking ``fc`` per step, averaged over
    time (``readout == "membrane_mean"``).
    """

    readout = "membrane_mean"

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, lif_tau: float, surrogate_alpha: float) -> None:
        """Build the network.

        Args:
            input_shape: ``(C, H, W)``; ``C`` replaces the RGB stem's 3 channels.
            num_classes: Width of ``fc``.
            lif_tau: Membrane time constant of every LIF neuron, in steps.
            surrogate_alpha: ``alpha`` of the ATan surrogate gradient.
        """
        super().__init__()
        net = sew_resnet.sew_resnet18(
            cnf="ADD",
            num_classes=num_classes,
            spiking_neuron=neuron.LIFNode,
            tau=lif_tau,
            surrogate_function=surrogate.ATan(alpha=surrogate_alpha),
            detach_reset=True,
        )
        stem = net.conv1
        net.conv1 = layer.Conv2d(
            input_shape[0], stem.out_channels, stem.kernel_size, stem.stride, stem.padding, bias=False
        )
        torch.nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        functional.set_step_mode(net, "m")
        self.net = net
        self.feature_dim = net.fc.in_features
        self.num_classes = num_classes

    @property
    def classifier(self) -> torch.nn.Module:
        """spikingjelly's ``fc`` (``net.fc``)."""
        return self.net.fc

    def features(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = self.encode_input(x)
        x = net.maxpool(net.sn1(net.bn1(net.conv1(x))))  # (T, B, 64, H/4, W/4)
        x = net.layer4(net.layer3(net.layer2(net.layer1(x))))
        return net.avgpool(x).flatten(2)  # (T, B, 512)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)  # (T, B, num_classes)
