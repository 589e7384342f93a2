"""A researcher's own networks and loss, trained by gan-lightning (see ../README.md)."""
