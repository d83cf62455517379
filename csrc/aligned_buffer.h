// Per-call, 64-byte aligned scratch memory (packed panels, column buffers). Throws
// std::bad_alloc (MemoryError in Python) when the request cannot be met.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>

namespace fastbp {

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(int64_t count) { allocate(count); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  void allocate(int64_t count) {
    std::free(data_);
    data_ = nullptr;
    if (count <= 0) return;
    if (static_cast<uint64_t>(count) > (std::numeric_limits<size_t>::max() - 64) / sizeof(T))
      throw std::bad_alloc();
    size_t bytes = (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
    data_ = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!data_) throw std::bad_alloc();
  }
  T* data() const { return data_; }

 private:
  T* data_ = nullptr;
};

}  // namespace fastbp
