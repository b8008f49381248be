"""neuromoco: NeuroMoCo self-supervised spiking networks, trained to a bit-exact Loihi 2 deployment."""

__version__ = "0.1.0"
