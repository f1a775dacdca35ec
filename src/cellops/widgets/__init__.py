"""Notebook widgets (ipywidgets 8 built-ins and plain HTML; no JavaScript build step)."""
