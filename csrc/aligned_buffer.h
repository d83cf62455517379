// Per-call, 64-byte aligned scratch memory (packed panels, padded inputs, column buffers).
// Throws std::bad_alloc (MemoryError in Python) when the request cannot be met.
//
// Blocks come through a small per-thread cache: a layer called again reuses the blocks its
// last call freed, instead of asking the OS for fresh pages that fault in and are zeroed on
// every call. Only large blocks are kept, at most kScratchCacheBytes per thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>

namespace fastbp {

void* scratch_alloc(size_t bytes);  // 64-byte aligned, bytes a multiple of 64
void scratch_free(void* p, size_t bytes);

// Bytes of scratch in use now over all threads, and the most since the last reset.
size_t scratch_in_use();
size_t scratch_peak();
void reset_scratch_peak();

// The cap a convolution's own scratch keeps under by splitting its batch (default 64 MiB).
size_t workspace_limit();
void set_workspace_limit(size_t bytes);
// What a pass may still take on the calling thread: the limit less the scratch this thread
// holds now (the weight-sized buffers a pass or its caller made before cutting its batch).
// Depends on the shapes only, as long as what the thread holds does.
size_t workspace_budget();

template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(int64_t count) { allocate(count); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { release(); }

  void allocate(int64_t count) {
    release();
    if (count <= 0) return;
    if (static_cast<uint64_t>(count) > (std::numeric_limits<size_t>::max() - 64) / sizeof(T))
      throw std::bad_alloc();
    bytes_ = (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
    data_ = static_cast<T*>(scratch_alloc(bytes_));
  }
  T* data() const { return data_; }

 private:
  void release() {
    if (data_) scratch_free(data_, bytes_);
    data_ = nullptr;
    bytes_ = 0;
  }
  T* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace fastbp
