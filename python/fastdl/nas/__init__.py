"""fastdl.nas: neural architecture search over a declarative space of small CNNs, by random
search or regularised evolution, each trial trained with fastdl.train.fit and ranked on
validation data; `fastdl nas` runs it on scikit-learn's digits under a parameter budget."""
from fastdl.nas.space import OPS, SearchSpace  # noqa: F401
from fastdl.nas.search import SearchResult, Trainer, random_search, regularized_evolution  # noqa: F401
