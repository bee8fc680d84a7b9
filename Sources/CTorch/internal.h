// Shared plumbing of the C shim: the handle type and the exception-to-error-code wrappers.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>

#include "ctorch.h"

struct ctorch_tensor_s {
    at::Tensor tensor;
};

namespace ctorch {

/// Remembers `message` as this thread's last error.
void set_last_error(const std::string &message);

/// A quantized engine's name as PyTorch spells it (torch.backends.quantized.engine):
/// "qnnpack", "onednn", "fbgemm", "x86", "none".
std::string quantized_engine_name(at::QEngine engine);

/// Copies a string into this thread's result buffer and returns a pointer to it.
const char *thread_string(std::string value);

inline ctorch_tensor wrap(at::Tensor tensor) { return new ctorch_tensor_s{std::move(tensor)}; }

inline at::Tensor &unwrap(ctorch_tensor handle) {
    if (handle == nullptr) throw std::invalid_argument("ctorch: NULL tensor handle");
    return handle->tensor;
}

/// An optional argument: an undefined tensor stands for "absent" (NULL handle).
inline c10::optional<at::Tensor> optional_tensor(ctorch_tensor handle) {
    if (handle == nullptr) return c10::nullopt;
    return handle->tensor;
}

inline at::IntArrayRef dims(const int64_t *values, int64_t count) { return at::IntArrayRef(values, size_t(count)); }

/// Runs `body` (returning a new handle, a pointer) and converts exceptions into NULL + last error.
template <typename Body> auto guarded_handle(Body &&body) -> decltype(body()) {
    try {
        return body();
    } catch (const c10::Error &error) {
        set_last_error(error.what_without_backtrace());
    } catch (const std::exception &error) {
        set_last_error(error.what());
    } catch (...) {
        set_last_error("ctorch: unknown C++ exception");
    }
    return nullptr;
}

/// Runs `body` (returning at::Tensor) and converts exceptions into NULL + last error.
template <typename Body> ctorch_tensor guarded_tensor(Body &&body) {
    return guarded_handle([&] { return wrap(body()); });
}

/// Runs `body` (returning void) and converts exceptions into -1 + last error.
template <typename Body> int guarded_status(Body &&body) {
    try {
        body();
        return 0;
    } catch (const c10::Error &error) {
        set_last_error(error.what_without_backtrace());
    } catch (const std::exception &error) {
        set_last_error(error.what());
    } catch (...) {
        set_last_error("ctorch: unknown C++ exception");
    }
    return -1;
}

} // namespace ctorch
