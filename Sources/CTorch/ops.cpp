// Element-wise arithmetic, reductions, shape manipulation and indexing.
#include "internal.h"

using namespace ctorch;

namespace {

std::vector<at::Tensor> tensor_list(const ctorch_tensor *tensors, int64_t count) {
    std::vector<at::Tensor> list;
    list.reserve(size_t(count));
    for (int64_t i = 0; i < count; ++i) list.push_back(unwrap(tensors[i]));
    return list;
}

at::Tensor apply_unary(ctorch_unary_op op, const at::Tensor &a) {
    switch (op) {
    case CTORCH_UNARY_NEG: return a.neg();
    case CTORCH_UNARY_RELU: return a.relu();
    case CTORCH_UNARY_SIGMOID: return a.sigmoid();
    case CTORCH_UNARY_TANH: return a.tanh();
    case CTORCH_UNARY_EXP: return a.exp();
    case CTORCH_UNARY_LOG: return a.log();
    case CTORCH_UNARY_ABS: return a.abs();
    case CTORCH_UNARY_SQRT: return a.sqrt();
    case CTORCH_UNARY_SIGN: return a.sign();
    case CTORCH_UNARY_CONTIGUOUS: return a.contiguous();
    case CTORCH_UNARY_CLONE: return a.clone();
    case CTORCH_UNARY_DETACH: return a.detach();
    case CTORCH_UNARY_FLOOR: return a.floor();
    case CTORCH_UNARY_LOGICAL_NOT: return a.logical_not();
    case CTORCH_UNARY_CHANNELS_LAST: return a.contiguous(at::MemoryFormat::ChannelsLast);
    case CTORCH_UNARY_RELU_INPLACE: {
        at::Tensor target = a;  // a shallow handle copy; relu_ writes through to the shared storage
        return target.relu_();
    }
    }
    throw std::invalid_argument("ctorch_unary: unknown operation " + std::to_string(int(op)));
}

at::Tensor apply_binary(ctorch_binary_op op, const at::Tensor &a, const at::Tensor &b) {
    switch (op) {
    case CTORCH_BINARY_ADD: return a.add(b);
    case CTORCH_BINARY_SUB: return a.sub(b);
    case CTORCH_BINARY_MUL: return a.mul(b);
    case CTORCH_BINARY_DIV: return a.div(b);
    case CTORCH_BINARY_POW: return a.pow(b);
    case CTORCH_BINARY_MATMUL: return a.matmul(b);
    case CTORCH_BINARY_MAXIMUM: return at::maximum(a, b);
    case CTORCH_BINARY_MINIMUM: return at::minimum(a, b);
    case CTORCH_BINARY_EQ: return a.eq(b);
    case CTORCH_BINARY_NE: return a.ne(b);
    case CTORCH_BINARY_LT: return a.lt(b);
    case CTORCH_BINARY_LE: return a.le(b);
    case CTORCH_BINARY_GT: return a.gt(b);
    case CTORCH_BINARY_GE: return a.ge(b);
    case CTORCH_BINARY_LOGICAL_AND: return a.logical_and(b);
    case CTORCH_BINARY_LOGICAL_OR: return a.logical_or(b);
    }
    throw std::invalid_argument("ctorch_binary: unknown operation " + std::to_string(int(op)));
}

at::Tensor apply_binary_scalar(ctorch_binary_op op, const at::Tensor &a, const at::Scalar &s) {
    switch (op) {
    case CTORCH_BINARY_ADD: return a.add(s);
    case CTORCH_BINARY_SUB: return a.sub(s);
    case CTORCH_BINARY_MUL: return a.mul(s);
    case CTORCH_BINARY_DIV: return a.div(s);
    case CTORCH_BINARY_POW: return a.pow(s);
    case CTORCH_BINARY_MAXIMUM: return a.clamp_min(s);
    case CTORCH_BINARY_MINIMUM: return a.clamp_max(s);
    case CTORCH_BINARY_EQ: return a.eq(s);
    case CTORCH_BINARY_NE: return a.ne(s);
    case CTORCH_BINARY_LT: return a.lt(s);
    case CTORCH_BINARY_LE: return a.le(s);
    case CTORCH_BINARY_GT: return a.gt(s);
    case CTORCH_BINARY_GE: return a.ge(s);
    default: break;
    }
    throw std::invalid_argument("ctorch_binary_scalar: operation " + std::to_string(int(op)) +
                                " has no tensor-scalar form");
}

} // namespace

extern "C" {

// MARK: element-wise

ctorch_tensor ctorch_unary(ctorch_unary_op op, ctorch_tensor a) {
    return guarded_tensor([&] { return apply_unary(op, unwrap(a)); });
}

ctorch_tensor ctorch_binary(ctorch_binary_op op, ctorch_tensor a, ctorch_tensor b) {
    return guarded_tensor([&] { return apply_binary(op, unwrap(a), unwrap(b)); });
}

ctorch_tensor ctorch_binary_scalar(ctorch_binary_op op, ctorch_tensor a, double scalar) {
    return guarded_tensor([&] { return apply_binary_scalar(op, unwrap(a), at::Scalar(scalar)); });
}

ctorch_tensor ctorch_scalar_binary(ctorch_binary_op op, double scalar, ctorch_tensor a) {
    return guarded_tensor([&] {
        const auto &tensor = unwrap(a);
        switch (op) {
        case CTORCH_BINARY_SUB: return tensor.neg().add(scalar);
        case CTORCH_BINARY_DIV: return tensor.reciprocal().mul(scalar);
        case CTORCH_BINARY_POW: return at::pow(at::Scalar(scalar), tensor);
        default: return apply_binary_scalar(op, tensor, at::Scalar(scalar));
        }
    });
}

ctorch_tensor ctorch_clamp(ctorch_tensor a, bool has_min, double min, bool has_max, double max) {
    return guarded_tensor([&] {
        c10::optional<at::Scalar> lower = has_min ? c10::optional<at::Scalar>(min) : c10::nullopt;
        c10::optional<at::Scalar> upper = has_max ? c10::optional<at::Scalar>(max) : c10::nullopt;
        return unwrap(a).clamp(lower, upper);
    });
}

ctorch_tensor ctorch_where(ctorch_tensor condition, ctorch_tensor a, ctorch_tensor b) {
    return guarded_tensor([&] { return at::where(unwrap(condition), unwrap(a), unwrap(b)); });
}

ctorch_tensor ctorch_to_dtype(ctorch_tensor a, int32_t dtype) {
    return guarded_tensor([&] { return unwrap(a).to(at::ScalarType(dtype)); });
}

// MARK: reductions

ctorch_tensor ctorch_reduce(ctorch_reduce_op op, ctorch_tensor a, const int64_t *dims_, int64_t ndims,
                            bool keepdim) {
    return guarded_tensor([&] {
        const auto &tensor = unwrap(a);
        if (ndims == 0) return op == CTORCH_REDUCE_SUM ? tensor.sum() : tensor.mean();
        const auto over = dims(dims_, ndims);
        return op == CTORCH_REDUCE_SUM ? tensor.sum(over, keepdim) : tensor.mean(over, keepdim);
    });
}

ctorch_tensor ctorch_extreme_all(ctorch_tensor a, bool is_max) {
    return guarded_tensor([&] { return is_max ? unwrap(a).max() : unwrap(a).min(); });
}

int ctorch_extreme_dim(ctorch_tensor a, bool is_max, int64_t dim, bool keepdim, ctorch_tensor *values,
                       ctorch_tensor *indices) {
    return guarded_status([&] {
        auto result = is_max ? unwrap(a).max(dim, keepdim) : unwrap(a).min(dim, keepdim);
        *values = wrap(std::get<0>(result));
        *indices = wrap(std::get<1>(result));
    });
}

ctorch_tensor ctorch_argmax(ctorch_tensor a, int64_t dim, bool keepdim) {
    return guarded_tensor([&] { return unwrap(a).argmax(dim, keepdim); });
}

ctorch_tensor ctorch_softmax(ctorch_tensor a, int64_t dim) {
    return guarded_tensor([&] { return unwrap(a).softmax(dim); });
}

ctorch_tensor ctorch_log_softmax(ctorch_tensor a, int64_t dim) {
    return guarded_tensor([&] { return unwrap(a).log_softmax(dim); });
}

// MARK: shape and indexing

ctorch_tensor ctorch_reshape(ctorch_tensor a, const int64_t *shape, int64_t ndim) {
    return guarded_tensor([&] { return unwrap(a).reshape(dims(shape, ndim)); });
}

ctorch_tensor ctorch_view(ctorch_tensor a, const int64_t *shape, int64_t ndim) {
    return guarded_tensor([&] { return unwrap(a).view(dims(shape, ndim)); });
}

ctorch_tensor ctorch_permute(ctorch_tensor a, const int64_t *order, int64_t ndim) {
    return guarded_tensor([&] { return unwrap(a).permute(dims(order, ndim)); });
}

ctorch_tensor ctorch_transpose(ctorch_tensor a, int64_t dim0, int64_t dim1) {
    return guarded_tensor([&] { return unwrap(a).transpose(dim0, dim1); });
}

ctorch_tensor ctorch_flatten(ctorch_tensor a, int64_t start_dim, int64_t end_dim) {
    return guarded_tensor([&] { return unwrap(a).flatten(start_dim, end_dim); });
}

ctorch_tensor ctorch_unsqueeze(ctorch_tensor a, int64_t dim) {
    return guarded_tensor([&] { return unwrap(a).unsqueeze(dim); });
}

ctorch_tensor ctorch_squeeze(ctorch_tensor a, int64_t dim) {
    return guarded_tensor([&] { return unwrap(a).squeeze(dim); });
}

ctorch_tensor ctorch_narrow(ctorch_tensor a, int64_t dim, int64_t start, int64_t length) {
    return guarded_tensor([&] { return unwrap(a).narrow(dim, start, length); });
}

ctorch_tensor ctorch_expand(ctorch_tensor a, const int64_t *shape, int64_t ndim) {
    return guarded_tensor([&] { return unwrap(a).expand(dims(shape, ndim)); });
}

ctorch_tensor ctorch_cat(const ctorch_tensor *tensors, int64_t count, int64_t dim) {
    return guarded_tensor([&] { return at::cat(tensor_list(tensors, count), dim); });
}

ctorch_tensor ctorch_stack(const ctorch_tensor *tensors, int64_t count, int64_t dim) {
    return guarded_tensor([&] { return at::stack(tensor_list(tensors, count), dim); });
}

int ctorch_split(ctorch_tensor a, int64_t split_size, int64_t dim, ctorch_tensor *out, int64_t capacity,
                 int64_t *count) {
    return guarded_status([&] {
        auto pieces = unwrap(a).split(split_size, dim);
        if (int64_t(pieces.size()) > capacity) {
            throw std::invalid_argument("ctorch_split: " + std::to_string(pieces.size()) +
                                        " pieces do not fit in " + std::to_string(capacity));
        }
        for (size_t i = 0; i < pieces.size(); ++i) out[i] = wrap(pieces[i]);
        *count = int64_t(pieces.size());
    });
}

ctorch_tensor ctorch_gather(ctorch_tensor a, int64_t dim, ctorch_tensor index) {
    return guarded_tensor([&] { return unwrap(a).gather(dim, unwrap(index)); });
}

ctorch_tensor ctorch_index_select(ctorch_tensor a, int64_t dim, ctorch_tensor index) {
    return guarded_tensor([&] { return unwrap(a).index_select(dim, unwrap(index)); });
}

ctorch_tensor ctorch_masked_select(ctorch_tensor a, ctorch_tensor mask) {
    return guarded_tensor([&] { return unwrap(a).masked_select(unwrap(mask)); });
}

} // extern "C"
