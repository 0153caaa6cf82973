#pragma once
// A growable array of trivially copyable T on 64-byte boundaries (cache lines, AVX-512 loads).
// New space is zero-filled, which the panel layout relies on for its unused lanes.
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace cangen {

template <typename T>
class AlignedBuffer {
  static_assert(std::is_trivially_copyable<T>::value, "AlignedBuffer holds plain data only");

 public:
  static constexpr size_t kAlignment = 64;

  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size) { resize(size); }
  ~AlignedBuffer() { release(); }
  AlignedBuffer(AlignedBuffer&& other) noexcept { swap(other); }
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    AlignedBuffer(std::move(other)).swap(*this);
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

  // Grows (geometrically) or shrinks the logical size; contents up to min(old, new) are kept.
  // All or nothing; cannot fail within capacity().
  void resize(size_t size) {
    reserveRoom(size);
    if (size > size_) std::memset(data_ + size_, 0, (size - size_) * sizeof(T));
    size_ = size;
  }

  // Capacity for `size` elements, grown geometrically so that repeated small growth stays linear.
  void reserveRoom(size_t size) {
    if (size > capacity_) reserve(std::max(size, capacity_ + capacity_ / 2));
  }

  void reserve(size_t capacity) {
    if (capacity <= capacity_) return;
    // Through operator new (which throws std::bad_alloc), so that tests can make it fail.
    T* fresh = static_cast<T*>(::operator new(capacity * sizeof(T), std::align_val_t{kAlignment}));
    if (size_ > 0) std::memcpy(fresh, data_, size_ * sizeof(T));
    release();
    data_ = fresh;
    capacity_ = capacity;
  }

  void swap(AlignedBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

 private:
  void release() noexcept {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t{kAlignment});
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace cangen
