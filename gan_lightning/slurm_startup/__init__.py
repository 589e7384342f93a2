"""Only ``sitecustomize.py`` matters here: see it."""
