"""Pictures of re-ID: embeddings in 2-D coloured by identity (paper Fig. 6) and the assignment
matrix M' of a frame pair (paper Fig. 7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def project_2d(features: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str]:
    """(N, D) -> (N, 2) with t-SNE when scikit-learn is installed, else PCA; returns the method."""
    features = np.asarray(features, dtype=np.float64)
    try:
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
        return TSNE(n_components=2, perplexity=perplexity, random_state=seed,
                    init="pca").fit_transform(features), "t-SNE"
    except ImportError:
        centred = features - features.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[:2].T, "PCA"


def plot_embeddings(features: np.ndarray, labels: np.ndarray, path: str | Path,
                    title: str = "embeddings") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points, method = project_2d(features)
    fig, ax = plt.subplots(figsize=(7, 7))
    uniq = np.unique(labels)
    cmap = plt.get_cmap("tab20", max(len(uniq), 1))
    for i, label in enumerate(uniq):
        sel = labels == label
        ax.scatter(points[sel, 0], points[sel, 1], s=8, color=cmap(i % 20))
    ax.set_title(f"{title} ({method}, {len(uniq)} identities, {len(labels)} boxes)")
    ax.set_xticks([])
    ax.set_yticks([])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_assignment(matrix: np.ndarray, n_a: int, n_b: int, path: str | Path,
                    title: str = "assignment M'") -> Path:
    """M' ((N+M) x (N+M+1), rows/columns frame A then frame B, last column the placeholder)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5.5))
    im = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=max(float(matrix.max()), 1e-6))
    n = n_a + n_b
    for pos in (n_a - 0.5, n - 0.5):
        ax.axvline(pos, color="white", lw=1)
    ax.axhline(n_a - 0.5, color="white", lw=1)
    ax.set_xticks([n_a / 2 - 0.5, n_a + n_b / 2 - 0.5, n])
    ax.set_xticklabels(["frame A", "frame B", "p"])
    ax.set_yticks([n_a / 2 - 0.5, n_a + n_b / 2 - 0.5])
    ax.set_yticklabels(["frame A", "frame B"])
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
