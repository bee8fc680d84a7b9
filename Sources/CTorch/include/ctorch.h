// C interface over libtorch. Pure C: opaque handles, no C++ types, no exceptions cross it.
//
// Conventions
// - Every tensor handle returned by a function is owned by the caller and must be released
//   exactly once with ctorch_tensor_free.
// - Failure: functions returning a handle return NULL; functions returning int return a
//   non-zero value. Either way ctorch_last_error() then holds libtorch's own message. The
//   message is per thread (thread_local), so concurrent callers do not see each other's errors.
// - Strings returned by ctorch_* functions stay valid until the next ctorch_* call on the
//   same thread that returns a string; copy them at once.
// - dtype codes are c10::ScalarType values (CTORCH_DTYPE_*), including the quantized ones,
//   so quantized tensors travel through the same handle type.
// - Reductions use CTORCH_REDUCTION_* (the values of at::Reduction).
// - Handles passed in must be valid (not NULL, not freed) unless a parameter says it may be
//   NULL; the metadata accessors (ctorch_dim, ctorch_shape, ...) do not check.
#ifndef CTORCH_H
#define CTORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ctorch_tensor_s *ctorch_tensor;
/// A seeded CPU random generator (independent of libtorch's global default generator).
typedef struct ctorch_generator_s *ctorch_generator;

/// libtorch's version string, e.g. "1.13.1".
const char *ctorch_version(void);

/// The message of the last failure on this thread ("" when none happened yet).
const char *ctorch_last_error(void);

// MARK: dtypes (c10::ScalarType values)
enum {
    CTORCH_DTYPE_UINT8 = 0,
    CTORCH_DTYPE_INT8 = 1,
    CTORCH_DTYPE_INT16 = 2,
    CTORCH_DTYPE_INT32 = 3,
    CTORCH_DTYPE_INT64 = 4,
    CTORCH_DTYPE_FLOAT16 = 5,
    CTORCH_DTYPE_FLOAT32 = 6,
    CTORCH_DTYPE_FLOAT64 = 7,
    CTORCH_DTYPE_BOOL = 11,
    CTORCH_DTYPE_QINT8 = 12,
    CTORCH_DTYPE_QUINT8 = 13,
    CTORCH_DTYPE_QINT32 = 14,
};

enum { CTORCH_REDUCTION_NONE = 0, CTORCH_REDUCTION_MEAN = 1, CTORCH_REDUCTION_SUM = 2 };

// MARK: library, threads, randomness
void ctorch_set_num_threads(int32_t threads);
int32_t ctorch_get_num_threads(void);
int32_t ctorch_get_num_interop_threads(void);
/// Makes the C library keep the memory that freed tensors leave for the next allocation, instead
/// of mapping every block over its mmap threshold (32 MiB at most in glibc) fresh from the kernel
/// and unmapping it on free (see Torch.keepFreedMemoryForReuse). False where the C library is
/// not glibc or refused a setting.
bool ctorch_keep_freed_memory(void);
/// at::get_parallel_info(): OpenMP/MKL/thread settings as libtorch reports them.
const char *ctorch_parallel_info(void);
/// Comma-separated names of the quantized engines this libtorch supports (e.g. "fbgemm,qnnpack").
const char *ctorch_supported_quantized_engines(void);
void ctorch_manual_seed(uint64_t seed);
/// A new CPU generator seeded with `seed`; release it with ctorch_generator_free.
ctorch_generator ctorch_generator_create(uint64_t seed);
void ctorch_generator_free(ctorch_generator generator);

// MARK: lifetime, metadata, data transfer
void ctorch_tensor_free(ctorch_tensor t);
/// Copies `data` (contiguous, `dtype` elements, product(shape) of them) into a new tensor.
ctorch_tensor ctorch_from_data(const void *data, const int64_t *shape, int64_t ndim, int32_t dtype);
/// Converts `t` to `dtype`, makes it contiguous, and copies its elements into `out`
/// (`capacity_bytes` must be at least numel * element size).
int ctorch_copy_data(ctorch_tensor t, int32_t dtype, void *out, int64_t capacity_bytes);
int64_t ctorch_dim(ctorch_tensor t);
/// Writes dim(t) sizes into `out`.
void ctorch_shape(ctorch_tensor t, int64_t *out);
int64_t ctorch_numel(ctorch_tensor t);
int32_t ctorch_dtype(ctorch_tensor t);
int ctorch_item(ctorch_tensor t, double *out);
/// Human-readable rendering of the tensor (libtorch's operator<<).
const char *ctorch_description(ctorch_tensor t);

// MARK: factories
ctorch_tensor ctorch_zeros(const int64_t *shape, int64_t ndim, int32_t dtype);
ctorch_tensor ctorch_ones(const int64_t *shape, int64_t ndim, int32_t dtype);
ctorch_tensor ctorch_full(const int64_t *shape, int64_t ndim, double value, int32_t dtype);
ctorch_tensor ctorch_arange(double start, double end, double step, int32_t dtype);
/// Standard normal samples from `generator`, or from libtorch's default generator when it is NULL
/// (seed that one with ctorch_manual_seed).
ctorch_tensor ctorch_randn(const int64_t *shape, int64_t ndim, int32_t dtype, ctorch_generator generator);
/// Uniform samples in [0, 1) from `generator` (NULL: the default generator).
ctorch_tensor ctorch_rand(const int64_t *shape, int64_t ndim, int32_t dtype, ctorch_generator generator);

// MARK: element-wise
typedef enum {
    CTORCH_UNARY_NEG, CTORCH_UNARY_RELU, CTORCH_UNARY_SIGMOID, CTORCH_UNARY_TANH,
    CTORCH_UNARY_EXP, CTORCH_UNARY_LOG, CTORCH_UNARY_ABS, CTORCH_UNARY_SQRT, CTORCH_UNARY_SIGN,
    CTORCH_UNARY_CONTIGUOUS, CTORCH_UNARY_CLONE, CTORCH_UNARY_DETACH, CTORCH_UNARY_FLOOR,
    CTORCH_UNARY_LOGICAL_NOT,
    /// A copy of a 4-D tensor in channels-last (NHWC) memory order, same shape and values;
    /// the operand itself when it already is.
    CTORCH_UNARY_CHANNELS_LAST,
    /// In place: overwrites the operand and returns a new handle to the same tensor.
    CTORCH_UNARY_RELU_INPLACE,
} ctorch_unary_op;
ctorch_tensor ctorch_unary(ctorch_unary_op op, ctorch_tensor a);

typedef enum {
    CTORCH_BINARY_ADD, CTORCH_BINARY_SUB, CTORCH_BINARY_MUL, CTORCH_BINARY_DIV,
    CTORCH_BINARY_POW, CTORCH_BINARY_MATMUL, CTORCH_BINARY_MAXIMUM, CTORCH_BINARY_MINIMUM,
    CTORCH_BINARY_EQ, CTORCH_BINARY_NE, CTORCH_BINARY_LT, CTORCH_BINARY_LE,
    CTORCH_BINARY_GT, CTORCH_BINARY_GE, CTORCH_BINARY_LOGICAL_AND, CTORCH_BINARY_LOGICAL_OR,
} ctorch_binary_op;
/// Tensor-tensor operation with broadcasting.
ctorch_tensor ctorch_binary(ctorch_binary_op op, ctorch_tensor a, ctorch_tensor b);
/// Tensor-scalar operation (`a op scalar`); MATMUL and the logical ops are not allowed.
ctorch_tensor ctorch_binary_scalar(ctorch_binary_op op, ctorch_tensor a, double scalar);
/// `scalar op a` for the non-commutative operations (SUB, DIV, POW).
ctorch_tensor ctorch_scalar_binary(ctorch_binary_op op, double scalar, ctorch_tensor a);
ctorch_tensor ctorch_clamp(ctorch_tensor a, bool has_min, double min, bool has_max, double max);
ctorch_tensor ctorch_where(ctorch_tensor condition, ctorch_tensor a, ctorch_tensor b);
ctorch_tensor ctorch_to_dtype(ctorch_tensor a, int32_t dtype);

// MARK: reductions
typedef enum { CTORCH_REDUCE_SUM, CTORCH_REDUCE_MEAN } ctorch_reduce_op;
/// Reduces over `dims` (all dims when ndims == 0).
ctorch_tensor ctorch_reduce(ctorch_reduce_op op, ctorch_tensor a, const int64_t *dims, int64_t ndims,
                            bool keepdim);
/// Maximum (is_max) or minimum over all elements.
ctorch_tensor ctorch_extreme_all(ctorch_tensor a, bool is_max);
/// Maximum (is_max) or minimum along `dim`: values and indices.
int ctorch_extreme_dim(ctorch_tensor a, bool is_max, int64_t dim, bool keepdim, ctorch_tensor *values,
                       ctorch_tensor *indices);
ctorch_tensor ctorch_argmax(ctorch_tensor a, int64_t dim, bool keepdim);
ctorch_tensor ctorch_softmax(ctorch_tensor a, int64_t dim);
ctorch_tensor ctorch_log_softmax(ctorch_tensor a, int64_t dim);

// MARK: shape and indexing
ctorch_tensor ctorch_reshape(ctorch_tensor a, const int64_t *shape, int64_t ndim);
/// A view sharing storage (fails when the strides do not allow it, like Tensor.view).
ctorch_tensor ctorch_view(ctorch_tensor a, const int64_t *shape, int64_t ndim);
ctorch_tensor ctorch_permute(ctorch_tensor a, const int64_t *dims, int64_t ndim);
ctorch_tensor ctorch_transpose(ctorch_tensor a, int64_t dim0, int64_t dim1);
ctorch_tensor ctorch_flatten(ctorch_tensor a, int64_t start_dim, int64_t end_dim);
ctorch_tensor ctorch_unsqueeze(ctorch_tensor a, int64_t dim);
ctorch_tensor ctorch_squeeze(ctorch_tensor a, int64_t dim);
ctorch_tensor ctorch_narrow(ctorch_tensor a, int64_t dim, int64_t start, int64_t length);
ctorch_tensor ctorch_expand(ctorch_tensor a, const int64_t *shape, int64_t ndim);
ctorch_tensor ctorch_cat(const ctorch_tensor *tensors, int64_t count, int64_t dim);
ctorch_tensor ctorch_stack(const ctorch_tensor *tensors, int64_t count, int64_t dim);
/// Splits into pieces of `split_size` along `dim`; writes the pieces into `out` and their
/// number into `count` (fails when more than `capacity` pieces would result).
int ctorch_split(ctorch_tensor a, int64_t split_size, int64_t dim, ctorch_tensor *out, int64_t capacity,
                 int64_t *count);
ctorch_tensor ctorch_gather(ctorch_tensor a, int64_t dim, ctorch_tensor index);
ctorch_tensor ctorch_index_select(ctorch_tensor a, int64_t dim, ctorch_tensor index);
/// Elements where `mask` is true, flattened (boolean-mask indexing).
ctorch_tensor ctorch_masked_select(ctorch_tensor a, ctorch_tensor mask);

// MARK: neural-network functions (`bias`, `weight` arguments may be NULL where optional)
ctorch_tensor ctorch_conv2d(ctorch_tensor input, ctorch_tensor weight, ctorch_tensor bias, const int64_t *stride,
                            const int64_t *padding, const int64_t *dilation, int64_t groups);
ctorch_tensor ctorch_linear(ctorch_tensor input, ctorch_tensor weight, ctorch_tensor bias);
/// at::batch_norm; in training mode it updates running_mean/running_var in place.
ctorch_tensor ctorch_batch_norm(ctorch_tensor input, ctorch_tensor weight, ctorch_tensor bias,
                                ctorch_tensor running_mean, ctorch_tensor running_var, bool training,
                                double momentum, double eps);
ctorch_tensor ctorch_max_pool2d(ctorch_tensor input, const int64_t *kernel, const int64_t *stride,
                                const int64_t *padding, bool ceil_mode);
ctorch_tensor ctorch_avg_pool2d(ctorch_tensor input, const int64_t *kernel, const int64_t *stride,
                                const int64_t *padding, bool ceil_mode, bool count_include_pad);
ctorch_tensor ctorch_adaptive_avg_pool2d(ctorch_tensor input, const int64_t *output_size);
ctorch_tensor ctorch_upsample_nearest2d(ctorch_tensor input, const int64_t *output_size);
ctorch_tensor ctorch_upsample_bilinear2d(ctorch_tensor input, const int64_t *output_size);

// MARK: losses
ctorch_tensor ctorch_smooth_l1_loss(ctorch_tensor input, ctorch_tensor target, int32_t reduction, double beta);
ctorch_tensor ctorch_binary_cross_entropy(ctorch_tensor input, ctorch_tensor target, ctorch_tensor weight,
                                          int32_t reduction);
ctorch_tensor ctorch_binary_cross_entropy_with_logits(ctorch_tensor input, ctorch_tensor target,
                                                      ctorch_tensor weight, ctorch_tensor pos_weight,
                                                      int32_t reduction);
ctorch_tensor ctorch_nll_loss(ctorch_tensor input, ctorch_tensor target, ctorch_tensor weight, int32_t reduction,
                              int64_t ignore_index);
ctorch_tensor ctorch_cross_entropy(ctorch_tensor input, ctorch_tensor target, ctorch_tensor weight,
                                   int32_t reduction, int64_t ignore_index, double label_smoothing);

// MARK: autograd
int ctorch_set_requires_grad(ctorch_tensor t, bool requires_grad);
bool ctorch_requires_grad(ctorch_tensor t);
/// Whether a 4-D tensor is laid out channels-last (NHWC in memory; see CTORCH_UNARY_CHANNELS_LAST),
/// a channel slice of such a tensor included.
bool ctorch_is_channels_last(ctorch_tensor t);
/// Back-propagates from `t`; `gradient` may be NULL for a scalar `t`.
int ctorch_backward(ctorch_tensor t, ctorch_tensor gradient, bool retain_graph);
/// Writes the accumulated gradient of `t` into `out`, or NULL when it has none.
int ctorch_grad(ctorch_tensor t, ctorch_tensor *out);
/// Zeroes the accumulated gradient in place (no-op when there is none).
int ctorch_zero_grad(ctorch_tensor t);
/// Whether autograd records operations on this thread; returns the previous setting.
bool ctorch_set_grad_enabled(bool enabled);
bool ctorch_is_grad_enabled(void);
/// Overwrites `destination`'s elements with `source`'s (broadcasting) without recording
/// the write in autograd (for parameter updates and loading state).
int ctorch_assign(ctorch_tensor destination, ctorch_tensor source);
/// torch::autograd::grad: the gradients of the `output_count` outputs (seeded with
/// `grad_outputs[i]`, where an entry may be NULL for a scalar output) with respect to the
/// `input_count` inputs, written into `out` (one new handle per input; an input the outputs do
/// not depend on gets zeros of its shape). With `create_graph` the gradients are themselves
/// differentiable (Hessian-vector products); the graph is kept when `retain_graph` or `create_graph`.
/// Unlike ctorch_backward nothing is accumulated into the inputs' .grad.
int ctorch_autograd_grad(const ctorch_tensor *outputs, const ctorch_tensor *grad_outputs, int64_t output_count,
                         const ctorch_tensor *inputs, int64_t input_count, bool retain_graph, bool create_graph,
                         ctorch_tensor *out);
/// Replaces the data of `destination` by `source`'s (shape and dtype included) while keeping
/// the handle and its requires-grad flag, like `param.data = source` in PyTorch (how
/// `Module.double()` converts parameters in place).
int ctorch_set_data(ctorch_tensor destination, ctorch_tensor source);

// MARK: quantized (INT8) inference
/// A convolution weight (qint8, per-channel or per-tensor) and float bias prepacked for the
/// quantized engine that was selected when it was made; release with ctorch_packed_conv_free.
typedef struct ctorch_packed_conv_s *ctorch_packed_conv;
/// Selects libtorch's process-wide quantized engine by name (one of
/// ctorch_supported_quantized_engines()); prepacking and some kernels depend on it.
int ctorch_set_quantized_engine(const char *name);
/// The selected quantized engine's name.
const char *ctorch_quantized_engine(void);
/// at::quantize_per_tensor: q = clamp(round(t / scale) + zero_point) in `dtype` (QUINT8, QINT8, QINT32).
ctorch_tensor ctorch_quantize_per_tensor(ctorch_tensor t, double scale, int64_t zero_point, int32_t dtype);
/// at::quantize_per_channel along `axis` with float64 `scales` and int64 `zero_points`.
ctorch_tensor ctorch_quantize_per_channel(ctorch_tensor t, ctorch_tensor scales, ctorch_tensor zero_points, int64_t axis,
                                          int32_t dtype);
/// The float tensor a quantized tensor stands for.
ctorch_tensor ctorch_dequantize(ctorch_tensor t);
/// The stored integers of a quantized tensor (uint8 for QUINT8, int8 for QINT8).
ctorch_tensor ctorch_int_repr(ctorch_tensor t);
/// Scale and zero point of a per-tensor quantized tensor.
int ctorch_quantized_grid(ctorch_tensor t, double *scale, int64_t *zero_point);
/// quantized::conv2d_prepack; `bias` (float32, one per output channel) may be NULL.
ctorch_packed_conv ctorch_quantized_conv2d_prepack(ctorch_tensor weight, ctorch_tensor bias, const int64_t *stride,
                                                   const int64_t *padding, const int64_t *dilation, int64_t groups);
void ctorch_packed_conv_free(ctorch_packed_conv conv);
/// quantized::conv2d, or quantized::conv2d_relu when `relu`, on a QUINT8 input; the output is
/// QUINT8 on the grid (scale, zero_point).
ctorch_tensor ctorch_quantized_conv2d(ctorch_tensor input, ctorch_packed_conv conv, bool relu, double scale,
                                      int64_t zero_point);
/// quantized::add, or quantized::add_relu when `relu`, requantized to (scale, zero_point).
ctorch_tensor ctorch_quantized_add(ctorch_tensor a, ctorch_tensor b, bool relu, double scale, int64_t zero_point);
/// quantized::cat along `dim`, requantized to (scale, zero_point).
ctorch_tensor ctorch_quantized_cat(const ctorch_tensor *tensors, int64_t count, int64_t dim, double scale,
                                   int64_t zero_point);

#ifdef __cplusplus
}
#endif

#endif
