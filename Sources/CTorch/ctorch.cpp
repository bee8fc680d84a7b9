// Library facts, errors, tensor lifetime and data transfer, factories, autograd.
#include "internal.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/version.h>

#include <cctype>
#include <cstring>
#include <sstream>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace ctorch {

namespace {
thread_local std::string last_error;
thread_local std::string string_result;
} // namespace

void set_last_error(const std::string &message) { last_error = message; }

const char *last_error_message() { return last_error.c_str(); }

const char *thread_string(std::string value) {
    string_result = std::move(value);
    return string_result.c_str();
}

std::string quantized_engine_name(at::QEngine engine) {
    switch (engine) {
    case at::QEngine::NoQEngine: return "none";
    case at::QEngine::FBGEMM: return "fbgemm";
    case at::QEngine::QNNPACK: return "qnnpack";
    case at::QEngine::ONEDNN: return "onednn";
    case at::QEngine::X86: return "x86";
    default: break;
    }
    // An engine added after 1.13: lower-case libtorch's own name.
    std::string name = c10::toString(engine);
    for (auto &character : name) character = char(std::tolower(static_cast<unsigned char>(character)));
    return name;
}

} // namespace ctorch

using namespace ctorch;

struct ctorch_generator_s {
    at::Generator generator;
};

namespace {
c10::optional<at::Generator> optional_generator(ctorch_generator handle) {
    if (handle == nullptr) return c10::nullopt;
    return handle->generator;
}

at::TensorOptions options_for(int32_t dtype) { return at::TensorOptions().dtype(at::ScalarType(dtype)); }
} // namespace

extern "C" {

const char *ctorch_version(void) { return TORCH_VERSION; }

const char *ctorch_last_error(void) { return ctorch::last_error_message(); }

// MARK: library, threads, randomness

void ctorch_set_num_threads(int32_t threads) {
    // at::set_num_threads rejects non-positive counts by throwing; clamp instead so the
    // call cannot fail (callers validate user input before).
    at::set_num_threads(threads < 1 ? 1 : threads);
}

int32_t ctorch_get_num_threads(void) { return at::get_num_threads(); }

int32_t ctorch_get_num_interop_threads(void) { return at::get_num_interop_threads(); }

bool ctorch_keep_freed_memory(void) {
#if defined(__GLIBC__)
    // No block is mapped on its own (M_MMAP_MAX 0: every allocation comes from malloc's heaps),
    // and no freed memory is given back to the kernel (a trim threshold of -1 is "never").
    return mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, -1) == 1;
#else
    return false;
#endif
}

const char *ctorch_parallel_info(void) {
    try {
        return thread_string(at::get_parallel_info());
    } catch (...) {
        return thread_string("");
    }
}

const char *ctorch_supported_quantized_engines(void) {
    try {
        std::string names;
        for (auto engine : at::globalContext().supportedQEngines()) {
            if (!names.empty()) names += ",";
            names += quantized_engine_name(engine);
        }
        return thread_string(names);
    } catch (...) {
        return thread_string("");
    }
}

void ctorch_manual_seed(uint64_t seed) { at::manual_seed(seed); }

ctorch_generator ctorch_generator_create(uint64_t seed) {
    try {
        return new ctorch_generator_s{at::detail::createCPUGenerator(seed)};
    } catch (const std::exception &error) {
        set_last_error(error.what());
        return nullptr;
    }
}

void ctorch_generator_free(ctorch_generator generator) { delete generator; }

// MARK: lifetime, metadata, data transfer

void ctorch_tensor_free(ctorch_tensor t) { delete t; }

ctorch_tensor ctorch_from_data(const void *data, const int64_t *shape, int64_t ndim, int32_t dtype) {
    return guarded_tensor([&] {
        auto result = at::empty(dims(shape, ndim), options_for(dtype));
        const auto bytes = size_t(result.numel()) * result.element_size();
        if (bytes > 0) std::memcpy(result.data_ptr(), data, bytes);
        return result;
    });
}

int ctorch_copy_data(ctorch_tensor t, int32_t dtype, void *out, int64_t capacity_bytes) {
    return guarded_status([&] {
        auto source = unwrap(t).detach().to(at::ScalarType(dtype)).contiguous();
        const auto bytes = int64_t(source.numel()) * int64_t(source.element_size());
        if (bytes > capacity_bytes) {
            throw std::invalid_argument("ctorch_copy_data: tensor needs " + std::to_string(bytes) +
                                        " bytes, buffer has " + std::to_string(capacity_bytes));
        }
        if (bytes > 0) std::memcpy(out, source.data_ptr(), size_t(bytes));
    });
}

int64_t ctorch_dim(ctorch_tensor t) { return t->tensor.dim(); }

void ctorch_shape(ctorch_tensor t, int64_t *out) {
    const auto sizes = t->tensor.sizes();
    std::copy(sizes.begin(), sizes.end(), out);
}

int64_t ctorch_numel(ctorch_tensor t) { return t->tensor.numel(); }

int32_t ctorch_dtype(ctorch_tensor t) { return int32_t(t->tensor.scalar_type()); }

int ctorch_item(ctorch_tensor t, double *out) {
    return guarded_status([&] { *out = unwrap(t).item<double>(); });
}

const char *ctorch_description(ctorch_tensor t) {
    try {
        std::ostringstream stream;
        stream << unwrap(t);
        return thread_string(stream.str());
    } catch (const std::exception &error) {
        return thread_string(error.what());
    }
}

// MARK: factories

ctorch_tensor ctorch_zeros(const int64_t *shape, int64_t ndim, int32_t dtype) {
    return guarded_tensor([&] { return at::zeros(dims(shape, ndim), options_for(dtype)); });
}

ctorch_tensor ctorch_ones(const int64_t *shape, int64_t ndim, int32_t dtype) {
    return guarded_tensor([&] { return at::ones(dims(shape, ndim), options_for(dtype)); });
}

ctorch_tensor ctorch_full(const int64_t *shape, int64_t ndim, double value, int32_t dtype) {
    return guarded_tensor([&] { return at::full(dims(shape, ndim), value, options_for(dtype)); });
}

ctorch_tensor ctorch_arange(double start, double end, double step, int32_t dtype) {
    return guarded_tensor([&] { return at::arange(start, end, step, options_for(dtype)); });
}

ctorch_tensor ctorch_randn(const int64_t *shape, int64_t ndim, int32_t dtype, ctorch_generator generator) {
    return guarded_tensor([&] { return at::randn(dims(shape, ndim), optional_generator(generator), options_for(dtype)); });
}

ctorch_tensor ctorch_rand(const int64_t *shape, int64_t ndim, int32_t dtype, ctorch_generator generator) {
    return guarded_tensor([&] { return at::rand(dims(shape, ndim), optional_generator(generator), options_for(dtype)); });
}

// MARK: autograd

int ctorch_set_requires_grad(ctorch_tensor t, bool requires_grad) {
    return guarded_status([&] { unwrap(t).set_requires_grad(requires_grad); });
}

bool ctorch_requires_grad(ctorch_tensor t) { return t->tensor.requires_grad(); }
bool ctorch_is_channels_last(ctorch_tensor t) {
    // suggest_memory_format reads the stride order, so a channel slice of a channels-last
    // tensor (ShuffleNet's split) counts as channels-last too.
    return t->tensor.dim() == 4 && t->tensor.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
}

int ctorch_backward(ctorch_tensor t, ctorch_tensor gradient, bool retain_graph) {
    return guarded_status([&] {
        at::Tensor seed = gradient == nullptr ? at::Tensor() : gradient->tensor;
        unwrap(t).backward(seed, retain_graph);
    });
}

int ctorch_grad(ctorch_tensor t, ctorch_tensor *out) {
    return guarded_status([&] {
        const auto &grad = unwrap(t).grad();
        *out = grad.defined() ? wrap(grad) : nullptr;
    });
}

int ctorch_zero_grad(ctorch_tensor t) {
    return guarded_status([&] {
        auto &grad = unwrap(t).mutable_grad();
        if (grad.defined()) {
            // Same as PyTorch 1.13's Optimizer.zero_grad(set_to_none=False).
            grad = grad.detach();
            grad.zero_();
        }
    });
}

bool ctorch_set_grad_enabled(bool enabled) {
    const bool previous = c10::GradMode::is_enabled();
    c10::GradMode::set_enabled(enabled);
    return previous;
}

bool ctorch_is_grad_enabled(void) { return c10::GradMode::is_enabled(); }

int ctorch_assign(ctorch_tensor destination, ctorch_tensor source) {
    return guarded_status([&] {
        c10::AutoGradMode no_grad(false);
        unwrap(destination).copy_(unwrap(source));
    });
}

int ctorch_autograd_grad(const ctorch_tensor *outputs, const ctorch_tensor *grad_outputs, int64_t output_count,
                         const ctorch_tensor *inputs, int64_t input_count, bool retain_graph, bool create_graph,
                         ctorch_tensor *out) {
    return guarded_status([&] {
        std::vector<at::Tensor> output_list, seed_list, input_list;
        for (int64_t i = 0; i < output_count; ++i) {
            output_list.push_back(unwrap(outputs[i]));
            seed_list.push_back(grad_outputs == nullptr || grad_outputs[i] == nullptr ? at::Tensor() : grad_outputs[i]->tensor);
        }
        for (int64_t i = 0; i < input_count; ++i) input_list.push_back(unwrap(inputs[i]));
        auto gradients = torch::autograd::grad(output_list, input_list, seed_list, retain_graph || create_graph,
                                               create_graph, /*allow_unused=*/true);
        for (int64_t i = 0; i < input_count; ++i) {
            out[i] = wrap(gradients[size_t(i)].defined() ? gradients[size_t(i)] : at::zeros_like(input_list[size_t(i)]));
        }
    });
}

int ctorch_set_data(ctorch_tensor destination, ctorch_tensor source) {
    return guarded_status([&] { unwrap(destination).set_data(unwrap(source)); });
}

} // extern "C"
