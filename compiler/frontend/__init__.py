"""The front end: model files, PyTorch models to the IR, model summaries. The only part of the
compiler besides ``compiler.nn`` that imports torch."""

from compiler.frontend.modelfile import LoadedModel, Preprocessing, load_model, save_model

__all__ = ["LoadedModel", "Preprocessing", "load_model", "save_model"]
