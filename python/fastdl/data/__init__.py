"""fastdl.data (also importable as fastdl.utils.data, torch.utils.data's name): datasets
(map-style and iterable), samplers, DataLoader (sampler-ordered batches, collation, worker
threads), random_split, and batch transforms."""
from fastdl.data.dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset,  # noqa: F401
                                 Subset, TensorDataset, random_split)
from fastdl.data.sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,  # noqa: F401
                                 SubsetRandomSampler, WeightedRandomSampler)
from fastdl.data.dataloader import DataLoader, default_collate, default_convert, get_worker_info  # noqa: F401
from fastdl.data.distributed import DistributedSampler  # noqa: F401
from fastdl.data import transforms  # noqa: F401
from fastdl.data.graph import GraphData, load_node_classification  # noqa: F401
