"""Amaranth HDL components of the accelerator (factor stages, requantiser, network top)."""
