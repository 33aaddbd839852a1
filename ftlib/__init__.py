"""ftlib: the plumbing behind the notebooks (data, models, prompts, scoring, training, runs)."""

__version__ = "0.1.0"
