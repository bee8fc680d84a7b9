// Neural-network functions and losses (thin forwards to ATen's functional ops).
#include "internal.h"

using namespace ctorch;

namespace {
at::IntArrayRef pair(const int64_t *values) { return at::IntArrayRef(values, 2); }
} // namespace

extern "C" {

ctorch_tensor ctorch_conv2d(ctorch_tensor input, ctorch_tensor weight, ctorch_tensor bias, const int64_t *stride,
                            const int64_t *padding, const int64_t *dilation, int64_t groups) {
    return guarded_tensor([&] {
        return at::conv2d(unwrap(input), unwrap(weight), optional_tensor(bias), pair(stride), pair(padding),
                          pair(dilation), groups);
    });
}

ctorch_tensor ctorch_linear(ctorch_tensor input, ctorch_tensor weight, ctorch_tensor bias) {
    return guarded_tensor([&] { return at::linear(unwrap(input), unwrap(weight), optional_tensor(bias)); });
}

ctorch_tensor ctorch_batch_norm(ctorch_tensor input, ctorch_tensor weight, ctorch_tensor bias,
                                ctorch_tensor running_mean, ctorch_tensor running_var, bool training,
                                double momentum, double eps) {
    return guarded_tensor([&] {
        // cudnn_enabled only matters on CUDA; true matches torch.nn.functional.batch_norm.
        return at::batch_norm(unwrap(input), optional_tensor(weight), optional_tensor(bias),
                              optional_tensor(running_mean), optional_tensor(running_var), training, momentum, eps,
                              true);
    });
}

ctorch_tensor ctorch_max_pool2d(ctorch_tensor input, const int64_t *kernel, const int64_t *stride,
                                const int64_t *padding, bool ceil_mode) {
    return guarded_tensor([&] {
        const int64_t no_dilation[2] = {1, 1};
        return at::max_pool2d(unwrap(input), pair(kernel), pair(stride), pair(padding), pair(no_dilation),
                              ceil_mode);
    });
}

ctorch_tensor ctorch_avg_pool2d(ctorch_tensor input, const int64_t *kernel, const int64_t *stride,
                                const int64_t *padding, bool ceil_mode, bool count_include_pad) {
    return guarded_tensor([&] {
        return at::avg_pool2d(unwrap(input), pair(kernel), pair(stride), pair(padding), ceil_mode,
                              count_include_pad);
    });
}

ctorch_tensor ctorch_adaptive_avg_pool2d(ctorch_tensor input, const int64_t *output_size) {
    return guarded_tensor([&] { return at::adaptive_avg_pool2d(unwrap(input), pair(output_size)); });
}

ctorch_tensor ctorch_upsample_nearest2d(ctorch_tensor input, const int64_t *output_size) {
    return guarded_tensor([&] { return at::upsample_nearest2d(unwrap(input), pair(output_size)); });
}

ctorch_tensor ctorch_upsample_bilinear2d(ctorch_tensor input, const int64_t *output_size) {
    return guarded_tensor([&] { return at::upsample_bilinear2d(unwrap(input), pair(output_size), /*align_corners=*/false); });
}

// MARK: losses

ctorch_tensor ctorch_smooth_l1_loss(ctorch_tensor input, ctorch_tensor target, int32_t reduction, double beta) {
    return guarded_tensor([&] { return at::smooth_l1_loss(unwrap(input), unwrap(target), reduction, beta); });
}

ctorch_tensor ctorch_binary_cross_entropy(ctorch_tensor input, ctorch_tensor target, ctorch_tensor weight,
                                          int32_t reduction) {
    return guarded_tensor([&] {
        return at::binary_cross_entropy(unwrap(input), unwrap(target), optional_tensor(weight), reduction);
    });
}

ctorch_tensor ctorch_binary_cross_entropy_with_logits(ctorch_tensor input, ctorch_tensor target,
                                                      ctorch_tensor weight, ctorch_tensor pos_weight,
                                                      int32_t reduction) {
    return guarded_tensor([&] {
        return at::binary_cross_entropy_with_logits(unwrap(input), unwrap(target), optional_tensor(weight),
                                                    optional_tensor(pos_weight), reduction);
    });
}

ctorch_tensor ctorch_nll_loss(ctorch_tensor input, ctorch_tensor target, ctorch_tensor weight, int32_t reduction,
                              int64_t ignore_index) {
    return guarded_tensor([&] {
        return at::nll_loss(unwrap(input), unwrap(target), optional_tensor(weight), reduction, ignore_index);
    });
}

ctorch_tensor ctorch_cross_entropy(ctorch_tensor input, ctorch_tensor target, ctorch_tensor weight,
                                   int32_t reduction, int64_t ignore_index, double label_smoothing) {
    return guarded_tensor([&] {
        return at::cross_entropy_loss(unwrap(input), unwrap(target), optional_tensor(weight), reduction,
                                      ignore_index, label_smoothing);
    });
}

} // extern "C"
