// INT8 inference through libtorch's quantized kernels: quantize/dequantize, engine selection,
// prepacked convolutions, and the quantized ops whose output grid is a parameter (add, cat).
// Pooling, upsampling, slicing and reshaping of quantized tensors go through the ordinary
// functions (ATen dispatches them to the quantized kernels and keeps the input's grid).
#include "internal.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

using namespace ctorch;

/// A convolution's weight and bias prepacked for the quantized engine selected at prepack time.
struct ctorch_packed_conv_s {
    c10::intrusive_ptr<ConvPackedParamsBase<2>> params;
};

namespace {

c10::List<int64_t> int_list(const int64_t *values) { return c10::List<int64_t>({values[0], values[1]}); }

at::QEngine engine_named(const std::string &name) {
    for (auto engine : at::globalContext().supportedQEngines()) {
        if (quantized_engine_name(engine) == name) return engine;
    }
    std::string names;
    for (auto engine : at::globalContext().supportedQEngines()) names += (names.empty() ? "" : ", ") + quantized_engine_name(engine);
    throw std::invalid_argument("quantized engine '" + name + "' is not supported by this libtorch (it has: " + names + ")");
}

} // namespace

extern "C" {

int ctorch_set_quantized_engine(const char *name) {
    return guarded_status([&] { at::globalContext().setQEngine(engine_named(name)); });
}

const char *ctorch_quantized_engine(void) {
    try {
        return thread_string(quantized_engine_name(at::globalContext().qEngine()));
    } catch (...) {
        return thread_string("");
    }
}

ctorch_tensor ctorch_quantize_per_tensor(ctorch_tensor t, double scale, int64_t zero_point, int32_t dtype) {
    return guarded_tensor([&] { return at::quantize_per_tensor(unwrap(t), scale, zero_point, at::ScalarType(dtype)); });
}

ctorch_tensor ctorch_quantize_per_channel(ctorch_tensor t, ctorch_tensor scales, ctorch_tensor zero_points, int64_t axis,
                                          int32_t dtype) {
    return guarded_tensor([&] {
        return at::quantize_per_channel(unwrap(t), unwrap(scales), unwrap(zero_points), axis, at::ScalarType(dtype));
    });
}

ctorch_tensor ctorch_dequantize(ctorch_tensor t) {
    return guarded_tensor([&] { return unwrap(t).dequantize(); });
}

ctorch_tensor ctorch_int_repr(ctorch_tensor t) {
    return guarded_tensor([&] { return unwrap(t).int_repr(); });
}

int ctorch_quantized_grid(ctorch_tensor t, double *scale, int64_t *zero_point) {
    return guarded_status([&] {
        const auto &tensor = unwrap(t);
        *scale = tensor.q_scale();
        *zero_point = tensor.q_zero_point();
    });
}

ctorch_packed_conv ctorch_quantized_conv2d_prepack(ctorch_tensor weight, ctorch_tensor bias, const int64_t *stride,
                                                   const int64_t *padding, const int64_t *dilation, int64_t groups) {
    return guarded_handle([&]() -> ctorch_packed_conv {
        static auto prepack = c10::Dispatcher::singleton()
                                  .findSchemaOrThrow("quantized::conv2d_prepack", "")
                                  .typed<c10::intrusive_ptr<ConvPackedParamsBase<2>>(
                                      at::Tensor, c10::optional<at::Tensor>, c10::List<int64_t>, c10::List<int64_t>,
                                      c10::List<int64_t>, int64_t)>();
        auto params = prepack.call(unwrap(weight), optional_tensor(bias), int_list(stride), int_list(padding),
                                   int_list(dilation), groups);
        return new ctorch_packed_conv_s{std::move(params)};
    });
}

void ctorch_packed_conv_free(ctorch_packed_conv conv) { delete conv; }

ctorch_tensor ctorch_quantized_conv2d(ctorch_tensor input, ctorch_packed_conv conv, bool relu, double scale,
                                      int64_t zero_point) {
    return guarded_tensor([&] {
        if (conv == nullptr) throw std::invalid_argument("ctorch_quantized_conv2d: NULL packed convolution");
        // What quantized::conv2d(_relu) runs, without the dispatcher's boxing of the arguments.
        return relu ? conv->params->apply_relu(unwrap(input), scale, zero_point)
                    : conv->params->apply(unwrap(input), scale, zero_point);
    });
}

ctorch_tensor ctorch_quantized_add(ctorch_tensor a, ctorch_tensor b, bool relu, double scale, int64_t zero_point) {
    return guarded_tensor([&] {
        static auto add = c10::Dispatcher::singleton()
                              .findSchemaOrThrow("quantized::add", "")
                              .typed<at::Tensor(at::Tensor, at::Tensor, double, int64_t)>();
        static auto add_relu = c10::Dispatcher::singleton()
                                   .findSchemaOrThrow("quantized::add_relu", "")
                                   .typed<at::Tensor(at::Tensor, at::Tensor, double, int64_t)>();
        return (relu ? add_relu : add).call(unwrap(a), unwrap(b), scale, zero_point);
    });
}

ctorch_tensor ctorch_quantized_cat(const ctorch_tensor *tensors, int64_t count, int64_t dim, double scale,
                                   int64_t zero_point) {
    return guarded_tensor([&] {
        // Called boxed: the unboxed dispatcher cannot find the dispatch key inside a
        // c10::List<Tensor> argument in libtorch 1.13, the boxed one reads it from the list.
        static auto cat = c10::Dispatcher::singleton().findSchemaOrThrow("quantized::cat", "");
        c10::List<at::Tensor> list;
        list.reserve(size_t(count));
        for (int64_t i = 0; i < count; ++i) list.push_back(unwrap(tensors[i]));
        torch::jit::Stack stack{c10::IValue(std::move(list)), c10::IValue(dim), c10::IValue(scale), c10::IValue(zero_point)};
        cat.callBoxed(&stack);
        return stack.at(0).toTensor();
    });
}

} // extern "C"
