"""DeBut layers for PyTorch: chains, linear and convolutional layers, chain generators,
ALS initialisation from dense weights, and debutize for whole models."""

from compiler.nn.als import ALSResult, als_fit, svd_error
from compiler.nn.conv import DeButConv1d, DeButConv2d, conv_filter_matrix
from compiler.nn.debutize import DebutizeReport, debutize
from compiler.nn.generate import butterfly_chain, min_chain_params, search_chains, suggest_chain
from compiler.nn.linear import DeButLinear, apply_chain, chain_matrix
from debut.chain import Chain, ChainShape, Factor

__all__ = [
    "ALSResult",
    "Chain",
    "ChainShape",
    "DeButConv1d",
    "DeButConv2d",
    "DeButLinear",
    "DebutizeReport",
    "Factor",
    "als_fit",
    "apply_chain",
    "butterfly_chain",
    "chain_matrix",
    "conv_filter_matrix",
    "debutize",
    "min_chain_params",
    "search_chains",
    "suggest_chain",
    "svd_error",
]
