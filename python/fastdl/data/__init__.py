"""fastdl.data: Dataset, TensorDataset, DataLoader (seeded shuffling, drop_last, collation of
tensors / numpy arrays / numbers / tuples / dicts), random_split, and batch transforms."""
from fastdl.data.dataset import Dataset, Subset, TensorDataset, random_split  # noqa: F401
from fastdl.data.dataloader import DataLoader, default_collate  # noqa: F401
from fastdl.data.distributed import DistributedSampler  # noqa: F401
from fastdl.data import transforms  # noqa: F401
from fastdl.data.graph import GraphData, load_node_classification  # noqa: F401
