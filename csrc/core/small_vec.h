// Shape/stride vector with inline storage for up to 6 dims (no heap allocation in the
// common case); larger ranks spill to the heap.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

namespace fastdl {

class Dims {
 public:
  static constexpr int kInline = 6;
  Dims() = default;
  explicit Dims(int n, int64_t v = 0) { resize(n, v); }
  Dims(std::initializer_list<int64_t> l) { assign(l.begin(), int(l.size())); }
  Dims(const std::vector<int64_t>& v) { assign(v.data(), int(v.size())); }
  Dims(const int64_t* p, int n) { assign(p, n); }
  Dims(const Dims& o) { assign(o.data(), o.n_); }
  Dims(Dims&& o) noexcept { move_from(o); }
  Dims& operator=(const Dims& o) { if (this != &o) assign(o.data(), o.n_); return *this; }
  Dims& operator=(Dims&& o) noexcept { if (this != &o) { free_heap(); move_from(o); } return *this; }
  ~Dims() { free_heap(); }

  int size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t* data() { return heap_ ? heap_ : inl_; }
  const int64_t* data() const { return heap_ ? heap_ : inl_; }
  int64_t& operator[](int i) { return data()[i]; }
  int64_t operator[](int i) const { return data()[i]; }
  int64_t* begin() { return data(); }
  int64_t* end() { return data() + n_; }
  const int64_t* begin() const { return data(); }
  const int64_t* end() const { return data() + n_; }
  int64_t back() const { return data()[n_ - 1]; }
  void resize(int n, int64_t v = 0) {
    if (n > cap()) grow(n);
    for (int i = n_; i < n; ++i) data()[i] = v;
    n_ = n;
  }
  void push_back(int64_t v) { resize(n_ + 1); data()[n_ - 1] = v; }
  void insert(int pos, int64_t v) {
    resize(n_ + 1);
    int64_t* d = data();
    for (int i = n_ - 1; i > pos; --i) d[i] = d[i - 1];
    d[pos] = v;
  }
  void erase(int pos) {
    int64_t* d = data();
    for (int i = pos; i + 1 < n_; ++i) d[i] = d[i + 1];
    --n_;
  }
  bool operator==(const Dims& o) const { return n_ == o.n_ && std::equal(begin(), end(), o.begin()); }
  bool operator!=(const Dims& o) const { return !(*this == o); }
  std::vector<int64_t> vec() const { return std::vector<int64_t>(begin(), end()); }
  int64_t numel() const { int64_t p = 1; for (int i = 0; i < n_; ++i) p *= data()[i]; return p; }

 private:
  int cap() const { return heap_ ? hcap_ : kInline; }
  void grow(int n) {
    int64_t* h = new int64_t[n];
    std::memcpy(h, data(), sizeof(int64_t) * n_);
    free_heap();
    heap_ = h; hcap_ = n;
  }
  void assign(const int64_t* p, int n) { n_ = 0; resize(n); if (n) std::memmove(data(), p, sizeof(int64_t) * n); }
  void free_heap() { delete[] heap_; heap_ = nullptr; }
  void move_from(Dims& o) {
    n_ = o.n_;
    if (o.heap_) { heap_ = o.heap_; hcap_ = o.hcap_; o.heap_ = nullptr; }
    else { heap_ = nullptr; std::memcpy(inl_, o.inl_, sizeof(int64_t) * n_); }
    o.n_ = 0;
  }
  int64_t inl_[kInline];
  int64_t* heap_ = nullptr;
  int hcap_ = 0;
  int n_ = 0;
};

}  // namespace fastdl
