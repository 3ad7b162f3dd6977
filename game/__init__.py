"""The running scene: the in-game optimizer component and the viewer (thin for now).

``game`` depends on ``optimizer``, never the reverse.
"""
