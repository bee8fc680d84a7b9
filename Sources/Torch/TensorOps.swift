import CTorch

// Element-wise arithmetic, comparisons, reductions, shape manipulation and indexing.
// Every operation throws TorchError carrying libtorch's message (shape mismatch, bad dim, ...).

extension Tensor {
    func unary(_ op: ctorch_unary_op) throws -> Tensor { try Tensor.wrap(ctorch_unary(op, handle)) }
    func binary(_ op: ctorch_binary_op, _ other: Tensor) throws -> Tensor {
        try Tensor.wrap(ctorch_binary(op, handle, other.handle))
    }
    func binary(_ op: ctorch_binary_op, _ scalar: Double) throws -> Tensor {
        try Tensor.wrap(ctorch_binary_scalar(op, handle, scalar))
    }

    // MARK: arithmetic operators (broadcasting)

    public static func + (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CTORCH_BINARY_ADD, b) }
    public static func - (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CTORCH_BINARY_SUB, b) }
    public static func * (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CTORCH_BINARY_MUL, b) }
    public static func / (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(CTORCH_BINARY_DIV, b) }
    public static func + (a: Tensor, b: Double) throws -> Tensor { try a.binary(CTORCH_BINARY_ADD, b) }
    public static func - (a: Tensor, b: Double) throws -> Tensor { try a.binary(CTORCH_BINARY_SUB, b) }
    public static func * (a: Tensor, b: Double) throws -> Tensor { try a.binary(CTORCH_BINARY_MUL, b) }
    public static func / (a: Tensor, b: Double) throws -> Tensor { try a.binary(CTORCH_BINARY_DIV, b) }
    public static func + (a: Double, b: Tensor) throws -> Tensor { try b.binary(CTORCH_BINARY_ADD, a) }
    public static func * (a: Double, b: Tensor) throws -> Tensor { try b.binary(CTORCH_BINARY_MUL, a) }
    public static func - (a: Double, b: Tensor) throws -> Tensor {
        try Tensor.wrap(ctorch_scalar_binary(CTORCH_BINARY_SUB, a, b.handle))
    }
    public static func / (a: Double, b: Tensor) throws -> Tensor {
        try Tensor.wrap(ctorch_scalar_binary(CTORCH_BINARY_DIV, a, b.handle))
    }
    public static prefix func - (a: Tensor) throws -> Tensor { try a.unary(CTORCH_UNARY_NEG) }

    public func matmul(_ other: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_MATMUL, other) }
    public func pow(_ exponent: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_POW, exponent) }
    public func pow(_ exponent: Double) throws -> Tensor { try binary(CTORCH_BINARY_POW, exponent) }
    public func maximum(_ other: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_MAXIMUM, other) }
    public func minimum(_ other: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_MINIMUM, other) }

    // MARK: element-wise functions

    public func relu() throws -> Tensor { try unary(CTORCH_UNARY_RELU) }
    /// ReLU written into this tensor's memory (saves an allocation; autograd allows it where the
    /// input is not needed for a gradient, e.g. after batch norm or convolution). Returns `self`'s tensor.
    @discardableResult
    public func reluInPlace() throws -> Tensor { try unary(CTORCH_UNARY_RELU_INPLACE) }
    public func sigmoid() throws -> Tensor { try unary(CTORCH_UNARY_SIGMOID) }
    public func tanh() throws -> Tensor { try unary(CTORCH_UNARY_TANH) }
    public func exp() throws -> Tensor { try unary(CTORCH_UNARY_EXP) }
    public func log() throws -> Tensor { try unary(CTORCH_UNARY_LOG) }
    public func abs() throws -> Tensor { try unary(CTORCH_UNARY_ABS) }
    public func sqrt() throws -> Tensor { try unary(CTORCH_UNARY_SQRT) }
    public func sign() throws -> Tensor { try unary(CTORCH_UNARY_SIGN) }
    public func floor() throws -> Tensor { try unary(CTORCH_UNARY_FLOOR) }
    public func logicalNot() throws -> Tensor { try unary(CTORCH_UNARY_LOGICAL_NOT) }
    public func logicalAnd(_ other: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_LOGICAL_AND, other) }
    public func logicalOr(_ other: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_LOGICAL_OR, other) }
    /// A copy with its own storage.
    public func clone() throws -> Tensor { try unary(CTORCH_UNARY_CLONE) }
    /// The same values in row-major memory order (needed after permute/transpose before view).
    public func contiguous() throws -> Tensor { try unary(CTORCH_UNARY_CONTIGUOUS) }
    /// The same 4-D values stored channels-last (NHWC in memory, shape still NCHW). oneDNN's
    /// convolutions compute in that order, so a network kept in it skips a layout conversion
    /// before and after every convolution (forward and backward).
    public func channelsLast() throws -> Tensor { try unary(CTORCH_UNARY_CHANNELS_LAST) }
    /// Whether this is a 4-D tensor stored channels-last (see `channelsLast()`).
    public var isChannelsLast: Bool { ctorch_is_channels_last(handle) }

    public func clamp(min: Double? = nil, max: Double? = nil) throws -> Tensor {
        try Tensor.wrap(ctorch_clamp(handle, min != nil, min ?? 0, max != nil, max ?? 0))
    }

    /// Elements of `self` where `condition` is true, else of `other`.
    public func `where`(_ condition: Tensor, else other: Tensor) throws -> Tensor {
        try Tensor.wrap(ctorch_where(condition.handle, handle, other.handle))
    }

    /// `condition ? a : b` element-wise.
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
        try Tensor.wrap(ctorch_where(condition.handle, a.handle, b.handle))
    }

    public func to(_ dtype: DType) throws -> Tensor { try Tensor.wrap(ctorch_to_dtype(handle, dtype.rawValue)) }

    // MARK: comparisons (bool tensors)

    public func eq(_ other: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_EQ, other) }
    public func ne(_ other: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_NE, other) }
    public func lt(_ other: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_LT, other) }
    public func le(_ other: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_LE, other) }
    public func gt(_ other: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_GT, other) }
    public func ge(_ other: Tensor) throws -> Tensor { try binary(CTORCH_BINARY_GE, other) }
    public func eq(_ scalar: Double) throws -> Tensor { try binary(CTORCH_BINARY_EQ, scalar) }
    public func ne(_ scalar: Double) throws -> Tensor { try binary(CTORCH_BINARY_NE, scalar) }
    public func lt(_ scalar: Double) throws -> Tensor { try binary(CTORCH_BINARY_LT, scalar) }
    public func le(_ scalar: Double) throws -> Tensor { try binary(CTORCH_BINARY_LE, scalar) }
    public func gt(_ scalar: Double) throws -> Tensor { try binary(CTORCH_BINARY_GT, scalar) }
    public func ge(_ scalar: Double) throws -> Tensor { try binary(CTORCH_BINARY_GE, scalar) }

    // MARK: reductions

    func reduce(_ op: ctorch_reduce_op, _ dims: [Int], keepDim: Bool) throws -> Tensor {
        let values = dims.map(Int64.init)
        return try Tensor.wrap(values.withUnsafeBufferPointer {
            ctorch_reduce(op, handle, $0.baseAddress, Int64(values.count), keepDim)
        })
    }

    /// Sum over all elements (a zero-dimensional tensor).
    public func sum() throws -> Tensor { try reduce(CTORCH_REDUCE_SUM, [], keepDim: false) }
    public func sum(dims: [Int], keepDim: Bool = false) throws -> Tensor {
        guard !dims.isEmpty else { throw TorchError(message: "sum(dims:) needs at least one dimension") }
        return try reduce(CTORCH_REDUCE_SUM, dims, keepDim: keepDim)
    }
    /// Mean over all elements (a zero-dimensional tensor).
    public func mean() throws -> Tensor { try reduce(CTORCH_REDUCE_MEAN, [], keepDim: false) }
    public func mean(dims: [Int], keepDim: Bool = false) throws -> Tensor {
        guard !dims.isEmpty else { throw TorchError(message: "mean(dims:) needs at least one dimension") }
        return try reduce(CTORCH_REDUCE_MEAN, dims, keepDim: keepDim)
    }
    public func max() throws -> Tensor { try Tensor.wrap(ctorch_extreme_all(handle, true)) }
    public func min() throws -> Tensor { try Tensor.wrap(ctorch_extreme_all(handle, false)) }
    public func max(dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
        try extreme(isMax: true, dim: dim, keepDim: keepDim)
    }
    public func min(dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
        try extreme(isMax: false, dim: dim, keepDim: keepDim)
    }
    private func extreme(isMax: Bool, dim: Int, keepDim: Bool) throws -> (values: Tensor, indices: Tensor) {
        var values: ctorch_tensor?
        var indices: ctorch_tensor?
        try TorchError.check(ctorch_extreme_dim(handle, isMax, Int64(dim), keepDim, &values, &indices))
        return (try Tensor.wrap(values), try Tensor.wrap(indices))
    }
    public func argmax(dim: Int, keepDim: Bool = false) throws -> Tensor {
        try Tensor.wrap(ctorch_argmax(handle, Int64(dim), keepDim))
    }
    public func softmax(dim: Int) throws -> Tensor { try Tensor.wrap(ctorch_softmax(handle, Int64(dim))) }
    public func logSoftmax(dim: Int) throws -> Tensor { try Tensor.wrap(ctorch_log_softmax(handle, Int64(dim))) }

    // MARK: shape

    public func reshape(_ shape: [Int]) throws -> Tensor {
        try Tensor.withShape(shape) { ctorch_reshape(handle, $0, $1) }
    }
    /// A view sharing storage; throws when the memory layout does not allow it.
    public func view(_ shape: [Int]) throws -> Tensor {
        try Tensor.withShape(shape) { ctorch_view(handle, $0, $1) }
    }
    public func permute(_ dims: [Int]) throws -> Tensor {
        try Tensor.withShape(dims) { ctorch_permute(handle, $0, $1) }
    }
    public func expand(_ shape: [Int]) throws -> Tensor {
        try Tensor.withShape(shape) { ctorch_expand(handle, $0, $1) }
    }
    public func transpose(_ dim0: Int, _ dim1: Int) throws -> Tensor {
        try Tensor.wrap(ctorch_transpose(handle, Int64(dim0), Int64(dim1)))
    }
    public func flatten(startDim: Int = 0, endDim: Int = -1) throws -> Tensor {
        try Tensor.wrap(ctorch_flatten(handle, Int64(startDim), Int64(endDim)))
    }
    public func unsqueeze(_ dim: Int) throws -> Tensor { try Tensor.wrap(ctorch_unsqueeze(handle, Int64(dim))) }
    public func squeeze(_ dim: Int) throws -> Tensor { try Tensor.wrap(ctorch_squeeze(handle, Int64(dim))) }
    /// `length` elements along `dim` starting at `start` (a view).
    public func narrow(dim: Int, start: Int, length: Int) throws -> Tensor {
        try Tensor.wrap(ctorch_narrow(handle, Int64(dim), Int64(start), Int64(length)))
    }

    public static func cat(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        let handles: [ctorch_tensor?] = tensors.map(\.handle)
        return try wrap(handles.withUnsafeBufferPointer { ctorch_cat($0.baseAddress, Int64(handles.count), Int64(dim)) })
    }

    public static func stack(_ tensors: [Tensor], dim: Int) throws -> Tensor {
        let handles: [ctorch_tensor?] = tensors.map(\.handle)
        return try wrap(handles.withUnsafeBufferPointer { ctorch_stack($0.baseAddress, Int64(handles.count), Int64(dim)) })
    }

    /// Pieces of `size` elements along `dim` (the last may be smaller), like torch.split.
    public func split(size: Int, dim: Int) throws -> [Tensor] {
        let shape = self.shape
        let axis = dim < 0 ? dim + shape.count : dim
        guard size > 0, shape.indices.contains(axis) else {
            throw TorchError(message: "split: size \(size) must be positive and dim \(dim) inside rank \(shape.count)")
        }
        let capacity = Swift.max(1, (shape[axis] + size - 1) / size)
        var pieces = [ctorch_tensor?](repeating: nil, count: capacity)
        var count: Int64 = 0
        let status = pieces.withUnsafeMutableBufferPointer {
            ctorch_split(handle, Int64(size), Int64(dim), $0.baseAddress, Int64(capacity), &count)
        }
        try TorchError.check(status)
        return try pieces.prefix(Int(count)).map { try Tensor.wrap($0) }
    }

    /// `chunks` nearly equal pieces along `dim`, like torch.chunk.
    public func chunk(_ chunks: Int, dim: Int) throws -> [Tensor] {
        let shape = self.shape
        let axis = dim < 0 ? dim + shape.count : dim
        guard chunks > 0, shape.indices.contains(axis) else {
            throw TorchError(message: "chunk: count \(chunks) must be positive and dim \(dim) inside rank \(shape.count)")
        }
        return try split(size: Swift.max(1, (shape[axis] + chunks - 1) / chunks), dim: dim)
    }

    // MARK: indexing

    public func gather(dim: Int, index: Tensor) throws -> Tensor {
        try Tensor.wrap(ctorch_gather(handle, Int64(dim), index.handle))
    }
    public func indexSelect(dim: Int, index: Tensor) throws -> Tensor {
        try Tensor.wrap(ctorch_index_select(handle, Int64(dim), index.handle))
    }
    /// The elements where the bool `mask` is true, as a flat tensor.
    public func maskedSelect(_ mask: Tensor) throws -> Tensor {
        try Tensor.wrap(ctorch_masked_select(handle, mask.handle))
    }
}
