"""Built-in data sets that a model file can name, so commands find test data without flags.

Only data that ships inside an installed package is used (no downloads at run time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from debut.errors import DatasetError

__all__ = ["DATASETS", "DatasetRef", "Split", "check_labels", "load_npz", "load_split"]

DATASETS = {
    "sklearn-digits": "scikit-learn's 8x8 hand-written digits: 1,797 samples, 64 features 0..16, "
    "10 classes",
}


@dataclass(frozen=True)
class DatasetRef:
    """A built-in data set and the split a model was trained with."""

    name: str
    test_size: float = 0.25
    random_state: int = 0
    stratify: bool = True

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "test_size": self.test_size,
            "random_state": self.random_state,
            "stratify": self.stratify,
        }

    @classmethod
    def from_dict(cls, data: dict) -> DatasetRef:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise DatasetError(f"dataset reference must be a dict with a 'name', not {data!r}")
        if data["name"] not in DATASETS:
            raise DatasetError(f"dataset must be one of {sorted(DATASETS)}, not {data['name']!r}")
        try:
            ref = cls(
                name=data["name"],
                test_size=float(data.get("test_size", 0.25)),
                random_state=int(data.get("random_state", 0)),
                stratify=bool(data.get("stratify", True)),
            )
        except (TypeError, ValueError):
            raise DatasetError(
                "dataset reference must give test_size as a number and random_state as an "
                f"integer, not {data!r}"
            ) from None
        if not 0 < ref.test_size < 1:
            raise DatasetError(f"dataset test_size must be in (0, 1), not {ref.test_size!r}")
        return ref


@dataclass(frozen=True)
class Split:
    """Raw (not preprocessed) features and integer labels of a train/test split."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _load_raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "sklearn-digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        return data.data.astype(np.float64), data.target.astype(np.int64)
    raise DatasetError(f"dataset must be one of {sorted(DATASETS)}, not {name!r}")


def load_split(ref: DatasetRef) -> Split:
    """Load a built-in data set and split it exactly as recorded in ``ref``."""
    from sklearn.model_selection import train_test_split

    x, y = _load_raw(ref.name)
    x_train, x_test, y_train, y_test = train_test_split(
        x,
        y,
        test_size=ref.test_size,
        random_state=ref.random_state,
        stratify=y if ref.stratify else None,
    )
    return Split(x_train, y_train, x_test, y_test)


def load_npz(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``X`` (raw features, one sample per row) and optional ``y`` labels from an .npz."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DatasetError(
                f"{path} holds one array (an .npy); calibration data is an .npz with raw "
                "features 'X' and labels 'y': np.savez(F, X=features, y=labels)"
            )
        with loaded as data:
            if "X" not in data:
                raise DatasetError(f"{path} must hold an array 'X', not only {sorted(data.files)}")
            x = np.asarray(data["X"], dtype=np.float64)
            y = _labels(data["y"], path) if "y" in data else None
    except FileNotFoundError:
        raise DatasetError(f"data file {path!r} does not exist") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path} is not a readable .npz file ({exc})") from None
    if x.ndim < 2 or len(x) == 0:
        raise DatasetError(f"{path}: 'X' must have one sample per row, not shape {x.shape}")
    if not np.isfinite(x).all():
        raise DatasetError(f"{path}: 'X' holds NaN or Inf values")
    if y is not None and y.shape != (len(x),):
        raise DatasetError(f"{path}: 'y' must have shape ({len(x)},), not {y.shape}")
    return x, y


def _labels(values: np.ndarray, path: str) -> np.ndarray:
    """Class labels as integers; whole-valued floats are taken, anything else is refused."""
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    whole = values.dtype.kind == "f" and np.isfinite(values).all()
    if whole and (values == np.round(values)).all() and (np.abs(values) < 2**31).all():
        return values.astype(np.int64)
    raise DatasetError(f"{path}: 'y' must hold integer class labels, not {values.dtype} values")


def check_labels(labels: np.ndarray, classes: int, source: str) -> None:
    """Labels must name one of the model's ``classes`` outputs."""
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise DatasetError(
            f"the labels of {source} must lie in 0..{classes - 1} (the model has {classes} "
            f"outputs), not {int(labels.min())}..{int(labels.max())}"
        )
