"""AutoML whose every candidate is a run: :func:`automl` (see :mod:`.search`). The package
is not named ``automl`` so that it never hides the function ``cellops.automl``."""

from .search import AutoMLResult, automl, leaderboard_html

__all__ = ["AutoMLResult", "automl", "leaderboard_html"]
