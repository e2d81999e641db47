// tensorbridge C++17 API: a header-only wrapper over the C ABI in tensorbridge.h.
//
//   tb::Tensor image = tb::Tensor::wrap(ptr, tb::Device::cuda(0), tb::dtype<uint8_t>(), {H, W, 3},
//                                       "HWC", [ptr] { cudaFree(ptr); });
//   tb::Tensor planar = tb::Tensor::alloc(tb::Device::cuda(0), tb::dtype<uint8_t>(), {3, H, W}, "CHW");
//   tb::reformat(image, planar, stream);             // NHWC/HWC -> CHW on the caller's stream
//   auto capsule = planar.to_dlpack_versioned();      // owning DLPack export
//
// Ownership: a Tensor holds one library reference; copying retains, destruction releases, moving
// transfers. Every failing call throws tb::Error carrying the TbStatus and the library's message.
//
// Callbacks: the library calls C++ code back from Rust (e.g. the `on_release` of Tensor::wrap). No
// exception may unwind through those frames, so every trampoline this header hands to the C API is
// noexcept and catches everything. A caught exception goes to the callback error handler
// (tb::set_callback_error_handler, in the spirit of std::set_terminate); the default one writes a
// line to stderr. The library's own cleanup still completes exactly once either way.
#ifndef TENSORBRIDGE_HPP
#define TENSORBRIDGE_HPP

#include <tensorbridge.h>

#include <complex>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace tb {

/// A failed library call: the status and the library's message (function, argument, value).
class Error : public std::runtime_error {
 public:
  Error(TbStatus status, const std::string& message) : std::runtime_error(message), status_(status) {}
  /// The TbStatus of the failed call.
  TbStatus status() const noexcept { return status_; }
  /// Its name, e.g. "TB_ERROR_OVERFLOW".
  const char* status_name() const noexcept { return tb_status_name(status_); }

 private:
  TbStatus status_;
};

/// Throws tb::Error for a failed status, with the calling thread's last message.
inline void check(TbStatus status) {
  if (status != TB_SUCCESS) throw Error(status, tb_last_error_message());
}

/// Receives an exception that a user callback threw while the library was calling it (e.g. a
/// throwing `on_release` of Tensor::wrap). Called on the thread that ran the callback, once per
/// throwing call; it must not throw (an exception from the handler itself is dropped).
using CallbackErrorHandler = std::function<void(std::exception_ptr)>;

namespace detail {

inline void default_callback_error_handler(std::exception_ptr error) noexcept {
  const char* what = "an exception not derived from std::exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  std::fprintf(stderr, "tensorbridge: a callback threw (%s); the exception was caught at the C "
               "boundary (set tb::set_callback_error_handler to handle it)\n", what);
}

struct CallbackErrorHandlerSlot {
  std::mutex mutex;
  std::shared_ptr<const CallbackErrorHandler> handler;
};

inline CallbackErrorHandlerSlot& callback_error_handler_slot() noexcept {
  static CallbackErrorHandlerSlot slot;
  return slot;
}

/// Hands the exception being handled to the installed handler (or the default one). Call only
/// from inside a catch block.
inline void report_callback_error() noexcept {
  std::exception_ptr error = std::current_exception();
  std::shared_ptr<const CallbackErrorHandler> handler;
  {
    CallbackErrorHandlerSlot& slot = callback_error_handler_slot();
    std::lock_guard<std::mutex> lock(slot.mutex);
    handler = slot.handler;
  }
  if (!handler) {
    default_callback_error_handler(error);
    return;
  }
  try {
    (*handler)(error);
  } catch (...) {
  }
}

}  // namespace detail

/// Installs `handler` for exceptions thrown by user callbacks (see CallbackErrorHandler) and
/// returns the previous one; an empty handler restores the default, which writes to stderr.
/// Process-wide and thread-safe.
inline CallbackErrorHandler set_callback_error_handler(CallbackErrorHandler handler) {
  auto next = handler ? std::make_shared<const CallbackErrorHandler>(std::move(handler)) : nullptr;
  detail::CallbackErrorHandlerSlot& slot = detail::callback_error_handler_slot();
  std::lock_guard<std::mutex> lock(slot.mutex);
  std::shared_ptr<const CallbackErrorHandler> previous = std::exchange(slot.handler, std::move(next));
  return previous ? *previous : CallbackErrorHandler{};
}

/// Where memory lives: DLPack device type code and ordinal.
struct Device {
  TbDevice raw;
  static Device cpu() { return {TbDevice{TB_DEVICE_CPU, 0}}; }
  static Device cuda(int32_t ordinal) { return {TbDevice{TB_DEVICE_CUDA, ordinal}}; }
  static Device cuda_host() { return {TbDevice{TB_DEVICE_CUDA_HOST, 0}}; }
  static Device cuda_managed(int32_t ordinal) { return {TbDevice{TB_DEVICE_CUDA_MANAGED, ordinal}}; }
  int32_t type() const noexcept { return raw.device_type; }
  int32_t ordinal() const noexcept { return raw.device_id; }
  bool operator==(const Device& other) const noexcept {
    return raw.device_type == other.raw.device_type && raw.device_id == other.raw.device_id;
  }
};

/// The TbDataType of a C++ element type: dtype<float>(), dtype<uint8_t>(), dtype<bool>() …
template <typename T>
TbDataType dtype();
#define TB_HPP_DTYPE(type, code, bits) \
  template <>                          \
  inline TbDataType dtype<type>() {    \
    return TbDataType{static_cast<uint8_t>(code), bits, 1}; \
  }
TB_HPP_DTYPE(bool, TB_DTYPE_CODE_BOOL, 8)
TB_HPP_DTYPE(int8_t, TB_DTYPE_CODE_INT, 8)
TB_HPP_DTYPE(int16_t, TB_DTYPE_CODE_INT, 16)
TB_HPP_DTYPE(int32_t, TB_DTYPE_CODE_INT, 32)
TB_HPP_DTYPE(int64_t, TB_DTYPE_CODE_INT, 64)
TB_HPP_DTYPE(uint8_t, TB_DTYPE_CODE_UINT, 8)
TB_HPP_DTYPE(uint16_t, TB_DTYPE_CODE_UINT, 16)
TB_HPP_DTYPE(uint32_t, TB_DTYPE_CODE_UINT, 32)
TB_HPP_DTYPE(uint64_t, TB_DTYPE_CODE_UINT, 64)
TB_HPP_DTYPE(float, TB_DTYPE_CODE_FLOAT, 32)
TB_HPP_DTYPE(double, TB_DTYPE_CODE_FLOAT, 64)
TB_HPP_DTYPE(std::complex<float>, TB_DTYPE_CODE_COMPLEX, 64)
TB_HPP_DTYPE(std::complex<double>, TB_DTYPE_CODE_COMPLEX, 128)
#undef TB_HPP_DTYPE

/// A dtype by name ("float16", "bfloat16", "uint8" …).
inline TbDataType dtype(const char* name) {
  TbDataType out{};
  check(tb_dtype_from_name(name, &out));
  return out;
}

/// The canonical name of a dtype ("float32").
inline std::string dtype_name(TbDataType type) {
  const char* name = nullptr;
  check(tb_dtype_name(type, &name));
  return name;
}

/// A CUDA stream as the C API takes it (a cudaStream_t / CUstream); nullptr = legacy default.
using Stream = void*;

/// Owning DLPack exports: the deleter runs when the unique_ptr lets go (unless released to a
/// consumer with .release(), which then owns it).
struct DLPackDeleter {
  void operator()(TbDLManagedTensorVersioned* m) const noexcept {
    if (m && m->deleter) m->deleter(m);
  }
  void operator()(TbDLManagedTensor* m) const noexcept {
    if (m && m->deleter) m->deleter(m);
  }
};
using DLPackVersioned = std::unique_ptr<TbDLManagedTensorVersioned, DLPackDeleter>;
using DLPackLegacy = std::unique_ptr<TbDLManagedTensor, DLPackDeleter>;

/// A tensor: one reference to a library TbTensor. Copy retains, destruction releases.
class Tensor {
 public:
  /// An empty tensor (no handle); most members throw on it.
  Tensor() noexcept = default;

  /// Takes ownership of one reference to `handle` (as returned by the C API).
  static Tensor adopt(TbTensor* handle) noexcept { return Tensor(handle); }

  /// Wraps memory the caller owns. `on_release` (may be empty) runs exactly once when the last
  /// reference goes — e.g. `[p] { cudaFree(p); }` — on the thread that drops it. It should not
  /// throw: an exception it throws is caught and passed to the callback error handler (see
  /// set_callback_error_handler), and the tensor is released all the same. If the wrap fails, it
  /// throws and `on_release` is not called: the memory is still the caller's. `strides` are in
  /// bytes; empty = contiguous.
  static Tensor wrap(void* data, Device device, TbDataType type, std::vector<int64_t> shape,
                     const char* layout = nullptr, std::function<void()> on_release = {},
                     std::vector<int64_t> strides = {}, bool readonly = false) {
    auto context = on_release ? std::make_unique<std::function<void()>>(std::move(on_release)) : nullptr;
    TbTensor* handle = nullptr;
    check(tb_tensor_wrap(data, device.raw, type, static_cast<int32_t>(shape.size()), shape.data(),
                         strides.empty() ? nullptr : strides.data(), layout, readonly,
                         context ? &Tensor::run_release : nullptr, context.get(), &handle));
    context.release();  // the library calls run_release exactly once, which deletes it
    return Tensor(handle);
  }

  /// Allocates a tensor that owns its memory (host, device, pinned or managed).
  static Tensor alloc(Device device, TbDataType type, std::vector<int64_t> shape,
                      const char* layout = nullptr, int64_t row_alignment = 0) {
    TbTensor* handle = nullptr;
    check(tb_tensor_alloc(device.raw, type, static_cast<int32_t>(shape.size()), shape.data(), layout,
                          row_alignment, &handle));
    return Tensor(handle);
  }

  /// Imports a versioned DLPack tensor, taking ownership (on failure the unique_ptr keeps it).
  static Tensor from_dlpack(DLPackVersioned managed, const char* layout = nullptr) {
    TbTensor* handle = nullptr;
    check(tb_tensor_from_dlpack_versioned(managed.get(), layout, &handle));
    managed.release();
    return Tensor(handle);
  }

  /// Imports a legacy DLPack tensor, taking ownership (on failure the unique_ptr keeps it).
  static Tensor from_dlpack(DLPackLegacy managed, const char* layout = nullptr) {
    TbTensor* handle = nullptr;
    check(tb_tensor_from_dlpack(managed.get(), layout, &handle));
    managed.release();
    return Tensor(handle);
  }

  /// Imports a CUDA Array Interface descriptor (keep the producer alive while the tensor lives).
  static Tensor from_cuda_array_interface(const TbArrayInterface& desc, const char* layout = nullptr) {
    TbTensor* handle = nullptr;
    check(tb_tensor_from_cuda_array_interface(&desc, layout, nullptr, nullptr, &handle));
    return Tensor(handle);
  }

  Tensor(const Tensor& other) : handle_(other.handle_) {
    if (handle_) check(tb_tensor_retain(handle_));
  }
  Tensor(Tensor&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Tensor& operator=(Tensor other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  ~Tensor() { tb_tensor_release(handle_); }

  /// The C handle (still owned by this object).
  TbTensor* get() const noexcept { return handle_; }
  /// Gives up ownership of the handle's reference to the caller.
  TbTensor* release() noexcept { return std::exchange(handle_, nullptr); }
  explicit operator bool() const noexcept { return handle_ != nullptr; }

  /// Everything about the tensor.
  TbTensorInfo info() const {
    TbTensorInfo out{};
    check(tb_tensor_info(handle_, &out));
    return out;
  }
  void* data() const { return info().data; }
  int32_t rank() const { return info().rank; }
  std::vector<int64_t> shape() const {
    TbTensorInfo i = info();
    return std::vector<int64_t>(i.shape, i.shape + i.rank);
  }
  /// Strides in bytes.
  std::vector<int64_t> strides() const {
    TbTensorInfo i = info();
    return std::vector<int64_t>(i.strides, i.strides + i.rank);
  }
  TbDataType dtype() const { return info().dtype; }
  Device device() const { return Device{info().device}; }
  /// The layout's labels, "" when the tensor has none.
  std::string layout() const { return info().layout.labels; }
  bool readonly() const { return info().readonly; }
  bool contiguous() const { return info().contiguous; }
  int64_t nbytes() const { return info().nbytes; }

  /// Zero-copy view in `layout`, a permutation of this tensor's labels.
  Tensor permute(const char* layout) const { return view(tb_tensor_permute, layout); }
  /// Zero-copy view of start:stop:step along `dim` (Python slice semantics).
  Tensor slice(int32_t dim, int64_t start, int64_t stop = INT64_MAX, int64_t step = 1) const {
    TbTensor* out = nullptr;
    check(tb_tensor_slice(handle_, dim, start, stop, step, &out));
    return Tensor(out);
  }
  /// Zero-copy view of element `index` along `dim`, one rank lower.
  Tensor select(int32_t dim, int64_t index) const {
    TbTensor* out = nullptr;
    check(tb_tensor_select(handle_, dim, index, &out));
    return Tensor(out);
  }
  /// Zero-copy view with the labels replaced (nullptr removes them).
  Tensor with_layout(const char* layout) const { return view(tb_tensor_with_layout, layout); }
  /// A packed copy in new memory of the same kind.
  Tensor clone(Stream stream = nullptr) const {
    TbTensor* out = nullptr;
    check(tb_tensor_clone(handle_, stream, &out));
    return Tensor(out);
  }
  /// Makes `stream` wait (on the GPU) for the work pending on this tensor's memory.
  void sync(Stream stream) const { check(tb_tensor_sync(handle_, stream)); }

  /// An owning versioned DLPack export sharing this tensor's memory.
  DLPackVersioned to_dlpack_versioned() const {
    TbDLManagedTensorVersioned* out = nullptr;
    check(tb_tensor_to_dlpack_versioned(handle_, &out));
    return DLPackVersioned(out);
  }
  /// An owning legacy DLPack export sharing this tensor's memory. The legacy struct cannot say
  /// read-only: a read-only tensor throws (`TB_ERROR_READ_ONLY`); use `to_dlpack_versioned`.
  DLPackLegacy to_dlpack() const {
    TbDLManagedTensor* out = nullptr;
    check(tb_tensor_to_dlpack(handle_, &out));
    return DLPackLegacy(out);
  }
  /// The CUDA Array Interface descriptor (borrows this tensor's memory).
  TbArrayInterface cuda_array_interface() const {
    TbArrayInterface out{};
    check(tb_tensor_to_cuda_array_interface(handle_, &out));
    return out;
  }

 private:
  explicit Tensor(TbTensor* handle) noexcept : handle_(handle) {}

  Tensor view(TbStatus (*make)(const TbTensor*, const char*, TbTensor**), const char* layout) const {
    TbTensor* out = nullptr;
    check(make(handle_, layout, &out));
    return Tensor(out);
  }

  // The C cleanup callback of wrap(): runs the user's on_release once and frees it. noexcept and
  // catching everything, because it is called from Rust frames that no exception may cross.
  static void run_release(void* context, void*) noexcept {
    std::unique_ptr<std::function<void()>> release(static_cast<std::function<void()>*>(context));
    try {
      (*release)();
    } catch (...) {
      detail::report_callback_error();
    }
  }

  TbTensor* handle_ = nullptr;
};

/// Writes `src` into `dst` in `dst`'s layout (a permutation of `src`'s labels).
inline void reformat(const Tensor& src, const Tensor& dst, Stream stream = nullptr) {
  check(tb_reformat(src.get(), dst.get(), stream));
}

/// Copies `src` into `dst` (same shape and dtype) between any devices.
inline void copy(const Tensor& src, const Tensor& dst, Stream stream = nullptr) {
  check(tb_copy(src.get(), dst.get(), stream));
}

/// y = x * scale[c] + offset[c], converted to `dst`'s dtype and written in `dst`'s layout.
inline void convert(const Tensor& src, const Tensor& dst, const std::vector<float>& scale = {1.0f},
                    const std::vector<float>& offset = {0.0f}, Stream stream = nullptr) {
  if (scale.size() != offset.size()) {
    throw Error(TB_ERROR_INVALID_ARGUMENT, "tb::convert: scale and offset have different sizes");
  }
  check(tb_convert(src.get(), dst.get(), scale.data(), offset.data(), static_cast<int32_t>(scale.size()),
                   stream));
}

/// `convert` with output channel k reading source channel `order[k]` in the same pass (BGR -> RGB:
/// {2, 1, 0}); one entry per channel of `dst`'s `C` label.
inline void convert_channels(const Tensor& src, const Tensor& dst, const std::vector<int32_t>& order,
                             const std::vector<float>& scale = {1.0f}, const std::vector<float>& offset = {0.0f},
                             Stream stream = nullptr) {
  if (scale.size() != offset.size()) {
    throw Error(TB_ERROR_INVALID_ARGUMENT, "tb::convert_channels: scale and offset have different sizes");
  }
  check(tb_convert_channels(src.get(), dst.get(), order.data(), static_cast<int32_t>(order.size()), scale.data(),
                            offset.data(), static_cast<int32_t>(scale.size()), stream));
}

/// Number of CUDA devices; 0 where CUDA is unavailable.
inline int32_t cuda_device_count() noexcept {
  int32_t count = 0;
  return tb_cuda_device_count(&count) == TB_SUCCESS ? count : 0;
}

}  // namespace tb

#endif  // TENSORBRIDGE_HPP
