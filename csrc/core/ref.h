// Intrusive reference counting: one allocation per object, no separate control block.
#pragma once
#include <atomic>
#include <utility>

namespace fastdl {

struct RefCounted {
  mutable std::atomic<int> refs_{0};
  virtual ~RefCounted() = default;
};

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
    if (p_ && p_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete p_;
  }
  T* p_ = nullptr;
};

template <class T, class... A> Ref<T> make_ref(A&&... a) { return Ref<T>(new T(std::forward<A>(a)...)); }

}  // namespace fastdl
