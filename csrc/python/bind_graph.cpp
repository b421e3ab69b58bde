// Graph ops: scatter, message_passing, segment_softmax (ops/message_passing.h), and the CSR
// cache's introspection for tests.
#include "ops/csr.h"
#include "ops/message_passing.h"
#include "python/common.h"

namespace fastdl::py {

void init_graph(nb::module_& m) {
  m.def("scatter", [](const Tensor& src, const Tensor& index, int64_t dim, std::optional<int64_t> dim_size,
                      const std::string& reduce) {
    return maybe_release(src.numel(), [&] { return scatter(src, index, dim, dim_size, reduce); });
  }, "src"_a, "index"_a, "dim"_a = 0, "dim_size"_a = nb::none(), "reduce"_a = "sum",
     "Reduce slices of src along dim into groups given by index (sum, mean, max, min; empty groups give 0).");
  m.def("message_passing", [](const Tensor& x, const Tensor& edge_index, std::optional<Tensor> w,
                              const std::string& reduce, std::optional<int64_t> num_nodes) {
    return maybe_release(x.numel() + edge_index.numel(),
                         [&] { return message_passing(x, edge_index, w ? *w : Tensor(), reduce, num_nodes); });
  }, "x"_a, "edge_index"_a, "edge_weight"_a = nb::none(), "reduce"_a = "sum", "num_nodes"_a = nb::none(),
     "out[i] = reduce over edges j -> i of edge_weight[e] * x[j]; fused gather-reduce over a cached CSR, "
     "deterministic.");
  m.def("segment_softmax", [](const Tensor& src, const Tensor& index, std::optional<int64_t> num_nodes) {
    return maybe_release(src.numel(), [&] { return segment_softmax(src, index, num_nodes); });
  }, "src"_a, "index"_a, "num_nodes"_a = nb::none(),
     "Softmax of src (E, ...) over the entries sharing a value of index (E,), per column.");
  m.def("mp_cache_info", []() {
    nb::dict d;
    d["size"] = csr_cache_size();
    d["builds"] = csr_cache_builds();
    return d;
  }, "The message-passing CSR cache: entries held and CSRs built so far.");
  m.def("mp_cache_clear", &csr_cache_clear, "Drop every cached CSR.");
}

}  // namespace fastdl::py
