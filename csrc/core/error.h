// Exceptions thrown by ops; the binding layer maps each to its Python class.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <cstdint>

namespace fastdl {

struct ValueError : std::runtime_error { using std::runtime_error::runtime_error; };
struct TypeError : std::runtime_error { using std::runtime_error::runtime_error; };
struct IndexError : std::runtime_error { using std::runtime_error::runtime_error; };
struct DeviceError : std::runtime_error { using std::runtime_error::runtime_error; };
// Python's RuntimeError where PyTorch raises it for a valid-looking request it does not support
// (an in-place write whose operands share memory).
struct RuntimeError : std::runtime_error { using std::runtime_error::runtime_error; };
struct OutOfMemory : std::runtime_error { using std::runtime_error::runtime_error; };

namespace detail {
inline void fmt_into(std::ostringstream&) {}
template <class T, class... R> void fmt_into(std::ostringstream& o, const T& v, const R&... r) { o << v; fmt_into(o, r...); }
}  // namespace detail
template <class... A> std::string str_cat(const A&... a) { std::ostringstream o; detail::fmt_into(o, a...); return o.str(); }

std::string shape_str(const int64_t* d, int n);
template <class V> std::string shape_str(const V& v) { return shape_str(v.data(), int(v.size())); }

}  // namespace fastdl

#define FASTDL_CHECK(cond, Err, ...) \
  do { if (!(cond)) throw ::fastdl::Err(::fastdl::str_cat(__VA_ARGS__)); } while (0)
