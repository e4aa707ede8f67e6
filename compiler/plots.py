"""Plots written into build directories (PNG, no display needed)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_accuracy_vs_bits"]


def plot_accuracy_vs_bits(
    bits: list[int], fixed: list[float], float_accuracy: float, path: Path, title: str
) -> Path:
    """Fixed-point test accuracy against bit width (activations = weights), with the float
    accuracy as a reference line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5), dpi=120)
    ax.plot(bits, [100 * a for a in fixed], marker="o", label="fixed point (golden model)")
    ax.axhline(100 * float_accuracy, color="gray", linestyle="--", label="float (PyTorch)")
    ax.set_xlabel("bits (activations = weights)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_xticks(bits)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
