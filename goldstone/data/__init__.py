"""Data sets, all loaded from local files or generated offline."""

from goldstone.data.classification import Dataset, batch_indices, load_dataset

__all__ = ["Dataset", "batch_indices", "load_dataset"]
