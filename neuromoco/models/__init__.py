"""neuromoco.models: spiking backbones (one registry) and the float CUBA-LIF neuron."""

from neuromoco.models.base import SpikingBackbone, readout_logits
from neuromoco.models.neuron import CubaLIFNode
from neuromoco.models.registry import ModelConfig, build_model, list_models

__all__ = ["CubaLIFNode", "ModelConfig", "SpikingBackbone", "build_model", "list_models", "readout_logits"]
