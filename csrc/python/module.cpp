// fastdl._C: the nanobind module. C++ exceptions map to Python's classes (DESIGN §4).
#include <cstring>

#include "core/allocator.h"
#include "core/cpu_info.h"
#include "core/parallel.h"
#include "cpu/gemm.h"
#include "cuda/cuda_api.h"
#include "python/autocast.h"
#include "python/common.h"
#include "python/py_hooks.h"

using namespace fastdl;

NB_MODULE(_C, m) {
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try { std::rethrow_exception(p); }
    catch (const ValueError& e) { PyErr_SetString(PyExc_ValueError, e.what()); }
    catch (const TypeError& e) { PyErr_SetString(PyExc_TypeError, e.what()); }
    catch (const IndexError& e) { PyErr_SetString(PyExc_IndexError, e.what()); }
    catch (const DeviceError& e) { PyErr_SetString(PyExc_RuntimeError, e.what()); }
    catch (const RuntimeError& e) { PyErr_SetString(PyExc_RuntimeError, e.what()); }
    catch (const OutOfMemory& e) { PyErr_SetString(PyExc_MemoryError, e.what()); }
    catch (const std::bad_alloc&) { PyErr_SetString(PyExc_MemoryError, "fastdl: out of memory"); }
    catch (const nb::cast_error&) {  // a Python argument of the wrong type inside a binding
      PyErr_SetString(PyExc_TypeError, "fastdl: an argument has an unsupported type (expected an int, float, "
                                       "sequence of ints, dtype or Tensor where the signature says so)");
    }
  });

  nb::enum_<DType>(m, "dtype")
      .value("float32", DType::f32).value("float64", DType::f64).value("float16", DType::f16)
      .value("bfloat16", DType::bf16).value("int32", DType::i32).value("int64", DType::i64).value("bool", DType::b8)
      .value("uint8", DType::u8).value("int8", DType::i8).value("int16", DType::i16)
      .def_prop_ro("itemsize", [](DType d) { return dtype_size(d); })
      .def_prop_ro("is_floating_point", [](DType d) { return is_floating(d); })
      .def_prop_ro("is_signed", [](DType d) { return d != DType::b8 && d != DType::u8; })
      .def("__repr__", [](DType d) { return std::string("fastdl.") + dtype_name(d); })
      .def("__str__", [](DType d) { return std::string("fastdl.") + dtype_name(d); });

  nb::class_<Device>(m, "device")
      .def("__init__", [](Device* d, const std::string& s) { new (d) Device(parse_device(s)); })
      .def("__init__", [](Device* d, const std::string& type, int index) {
        Device p = parse_device(type);
        p.index = int8_t(index);
        new (d) Device(p);
      })
      .def_prop_ro("type", [](const Device& d) { return d.is_cpu() ? "cpu" : "cuda"; })
      .def_prop_ro("index", [](const Device& d) -> nb::object { if (d.is_cpu()) return nb::none(); return nb::int_(d.index); })
      .def("__repr__", [](const Device& d) {
        return d.is_cpu() ? std::string("device(type='cpu')") : "device(type='cuda', index=" + std::to_string(d.index) + ")";
      })
      .def("__str__", &Device::str)
      .def("__eq__", [](const Device& a, nb::handle b) {
        if (nb::isinstance<Device>(b)) return a == nb::cast<Device>(b);
        if (nb::isinstance<nb::str>(b)) {
          std::string s = nb::cast<std::string>(b);
          try { Device o = parse_device(s); return s == "cuda" ? a.is_cuda() : a == o; } catch (...) { return false; }
        }
        return false;
      })
      .def("__hash__", [](const Device& d) { return int(d.type) * 64 + d.index; });

  // type_slots: the hooks a tensor holds are visible to Python's cycle collector (tensor_gc.cpp).
  nb::class_<Tensor> cls(m, "Tensor", nb::is_weak_referenceable(), nb::type_slots(py::tensor_type_slots));
  py::init_tensor(m, cls);
  py::init_ops(m, cls);
  py::init_interop(m, cls);
  py::init_autograd(m);
  py::init_optim(m);
  py::init_nn(m);
  py::init_profiler(m);
  py::init_graph(m);
  py::init_sequence(m);
  py::init_conv(m);
  py::init_pool_norm(m);
  py::init_rnn(m);
  py::init_nccl(m);

  m.def("set_num_threads", &set_num_threads, "n"_a, "Set the size of fastdl's CPU thread pool.");
  m.def("get_num_threads", &get_num_threads);
  m.def("cpu_isa", []() { return std::string(isa_name(cpu_isa())); }, "The CPU kernel path in force: ref, avx2 or avx512.");
  m.def("set_cpu_isa", [](const std::string& s) {
    Isa i = s == "ref" ? Isa::ref : s == "avx2" ? Isa::avx2 : s == "avx512" ? Isa::avx512 : Isa(-1);
    if (int(i) < 0) throw ValueError("set_cpu_isa: expected 'ref', 'avx2' or 'avx512'; got '" + s + "'");
    set_cpu_isa(i);
    return std::string(isa_name(cpu_isa()));
  }, "isa"_a);
  m.def("cpu_info", []() {
    const CpuInfo& c = cpu_info();
    nb::dict d;
    d["avx2"] = c.avx2; d["fma"] = c.fma; d["avx512f"] = c.avx512f; d["avx512bf16"] = c.avx512bf16;
    d["amx_tile"] = c.amx_tile; d["amx_bf16"] = c.amx_bf16;
    d["vendor"] = std::string(c.vendor); d["family"] = c.family; d["model"] = c.model;
    d["l1d"] = c.l1d; d["l2"] = c.l2; d["l3"] = c.l3; d["cores"] = c.cores;
    return d;
  });
  m.def("_gemm_bf16_path", [](const std::string& path) {
    const char* name = cpu::gemm_set_bf16_path(path.c_str());
    if (!name)
      throw ValueError("_gemm_bf16_path: '" + path + "' is not a bf16 GEMM path this CPU has under the ISA in force ('" +
                       std::string(isa_name(cpu_isa())) + "'; dot and amx need avx512) (auto, widen, dot (AVX512-BF16), amx (AMX-BF16), "
                       "amx-emulated)");
    return std::string(name);
  }, "path"_a, "Choose the bf16 GEMM kernel (tests, benchmarks); returns its name.");
  m.def("_gemm_bf16_race", [](const std::string& a, const std::string& b) {
    double ta = 0, tb = 0;
    if (!cpu::gemm_race_bf16(a.c_str(), b.c_str(), &ta, &tb))
      throw ValueError("_gemm_bf16_race: '" + a + "' or '" + b + "' is not a bf16 GEMM path this CPU has");
    return nb::make_tuple(ta, tb);
  }, "a"_a, "b"_a, "CPU seconds of bf16 paths a and b on one 256 x 1024 x 1024 product (what 'auto' measures).");
  m.def("_gemm_kernel_name", [](const std::string& dt) {
    const DType d = dt == "float64" ? DType::f64 : dt == "bfloat16" ? DType::bf16 : DType::f32;
    return std::string(cpu::gemm_kernel(d).name);
  }, "dtype"_a, "The CPU GEMM kernel in force for float32, float64 or bfloat16.");
  m.def("_gemm_blocking", [](int64_t M, int64_t N, int64_t K, const std::string& dt) {
    const DType d = dt == "float64" ? DType::f64 : dt == "bfloat16" ? DType::bf16 : DType::f32;
    int64_t mc = 0, kc = 0, nc = 0;
    cpu::gemm_blocking(d, M, N, K, &mc, &kc, &nc);
    return nb::make_tuple(mc, kc, nc);
  }, "M"_a, "N"_a, "K"_a, "dtype"_a = "float32",
     "The CPU GEMM blocking (mc, kc, nc) for one M x N x K product (measures kc first if due).");
  m.def("cuda_is_available", &cuda::is_available);
  m.def("cuda_device_count", &cuda::device_count);
  m.def("cuda_synchronize", [](int d) { cuda::synchronize(d); }, "device"_a = 0);
  m.def("cuda_empty_cache", &cuda::empty_cache);
  m.def("empty_cache", &cpu_empty_cache);
  m.def("allocator_stats", []() {
    auto s = cpu_alloc_stats();
    nb::dict d;
    d["cached_bytes"] = s.cached_bytes; d["live_bytes"] = s.live_bytes; d["hits"] = s.hits; d["misses"] = s.misses;
    d["peak_bytes"] = s.peak_bytes;
    return d;
  });
  m.def("reset_peak_memory", &cpu_reset_peak, "Restart the CPU allocator's peak_bytes from the bytes live now.");
  m.def("manual_seed", [](uint64_t s) { manual_seed(s); }, "seed"_a);
  m.def("_random_u64", &random_u64);
  // autocast regions (fastdl/amp.py): the state of a device type ("cpu" or "cuda") on this thread
  m.def("_set_autocast", [](const std::string& device_type, bool enabled, DType dt) {
    py::autocast_state(device_type == "cuda") = py::Autocast{enabled, dt};
  }, "device_type"_a, "enabled"_a, "dtype"_a);
  m.def("_get_autocast", [](const std::string& device_type) {
    const py::Autocast& a = py::autocast_state(device_type == "cuda");
    return nb::make_tuple(a.on, a.dt);
  }, "device_type"_a);
  m.def("_rng_state", []() {
    uint64_t s[4];
    rng_state(s);
    return nb::bytes(reinterpret_cast<const char*>(s), sizeof(s));
  });
  m.def("_set_rng_state", [](nb::bytes b) {
    FASTDL_CHECK(b.size() == 4 * sizeof(uint64_t), ValueError, "set_rng_state: expected a state of 32 bytes; got ",
                 b.size());
    uint64_t s[4];
    std::memcpy(s, b.c_str(), sizeof(s));
    set_rng_state(s);
  }, "state"_a);
}
