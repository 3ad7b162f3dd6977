"""Experiments behind docs/METHOD.md: how the estimate's quality depends on the number of
parameters (``dimension``) and how close it is to the true gradient (``accuracy``)."""
