"""ftnotes: fine-tuning pretrained networks, demonstrated and measured on a laptop CPU."""

__version__ = "0.1.0"
