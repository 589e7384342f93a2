"""The config groups, installed as ``gan_lightning.conf`` (``gan-train`` reads them there)."""
