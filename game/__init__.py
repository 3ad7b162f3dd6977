"""The running scene: the in-game optimizer component (``OptimizerComponent``) and the
viewer behind ``sge view`` (``game.viewer``).

``game`` depends on ``optimizer``, never the reverse.
"""

from .component import OptimizerComponent, steps_per_frame

__all__ = ["OptimizerComponent", "steps_per_frame"]
