// Intrusive reference counting: one allocation per object, no separate control block.
#pragma once
#include <atomic>
#include <utility>
#include <vector>

namespace fastdl {

struct RefCounted {
  mutable std::atomic<int> refs_{0};
  virtual ~RefCounted() = default;
  // True for types whose objects chain to each other without bound (autograd nodes): the last
  // release defers their deletion (deferred_delete) so freeing a long chain does not recurse.
  static constexpr bool kDeferDelete = false;
};

namespace detail {
struct DeferredDeletes {
  std::vector<const RefCounted*> pending;
  bool active = false;
};
inline thread_local DeferredDeletes t_deferred_deletes;
}  // namespace detail

// Deletes p; a deletion that starts while another runs on this thread (a node's destructor
// releasing the next node) is queued and run by the outermost call, so the stack depth stays
// constant however deep the chain.
inline void deferred_delete(const RefCounted* p) {
  auto& d = detail::t_deferred_deletes;
  if (d.active) { d.pending.push_back(p); return; }
  d.active = true;
  delete p;
  while (!d.pending.empty()) {
    const RefCounted* q = d.pending.back();
    d.pending.pop_back();
    delete q;
  }
  d.active = false;
  if (d.pending.capacity() > 4096) d.pending = {};  // do not keep a huge buffer per thread
}

template <class T> class Ref {
 public:
  Ref() = default;
  Ref(T* p) : p_(p) { if (p_) p_->refs_.fetch_add(1, std::memory_order_relaxed); }
  Ref(const Ref& o) : Ref(o.p_) {}
  Ref(Ref&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  template <class U> Ref(const Ref<U>& o) : Ref(static_cast<T*>(o.get())) {}
  ~Ref() { release(); }
  Ref& operator=(Ref o) noexcept { std::swap(p_, o.p_); return *this; }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  bool operator==(const Ref& o) const { return p_ == o.p_; }
  bool operator!=(const Ref& o) const { return p_ != o.p_; }
  void reset() { release(); p_ = nullptr; }
  int use_count() const { return p_ ? p_->refs_.load() : 0; }

 private:
  void release() {
    if (p_ && p_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      if constexpr (T::kDeferDelete) deferred_delete(p_);
      else delete p_;
    }
  }
  T* p_ = nullptr;
};

template <class T, class... A> Ref<T> make_ref(A&&... a) { return Ref<T>(new T(std::forward<A>(a)...)); }

}  // namespace fastdl
