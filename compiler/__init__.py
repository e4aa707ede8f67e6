"""DeBut-to-FPGA compiler: DeBut layers for PyTorch, model files, and the compilation pipeline."""

__version__ = "0.1.0"
