"""hotspot-erc: multimodal emotion recognition in conversations, centred on emotion hotspots."""

__version__ = "0.1.0"
