import CTorch

/// An n-dimensional libtorch tensor owned by Swift.
///
/// The handle is released when the object is deinitialised, or earlier with `free()` when
/// memory must be returned at a known point (large activations in a training loop).
/// Instances are not thread-safe (like at::Tensor), so the type is not `Sendable`.
public final class Tensor {
    private var storage: ctorch_tensor?

    /// Takes ownership of a handle returned by the shim.
    init(owning handle: ctorch_tensor) { storage = handle }

    deinit {
        if let storage { ctorch_tensor_free(storage) }
    }

    /// Releases the libtorch tensor now. Using the tensor afterwards is a programming error.
    public func free() {
        if let storage { ctorch_tensor_free(storage) }
        storage = nil
    }

    /// The shim handle; precondition: not freed.
    var handle: ctorch_tensor {
        guard let storage else { preconditionFailure("Tensor used after free()") }
        return storage
    }

    /// Wraps a handle the shim returned, or throws the shim's error when it returned NULL.
    static func wrap(_ handle: ctorch_tensor?) throws -> Tensor {
        guard let handle else { throw TorchError.last() }
        return Tensor(owning: handle)
    }

    // MARK: metadata

    public var shape: [Int] {
        var sizes = [Int64](repeating: 0, count: Int(ctorch_dim(handle)))
        sizes.withUnsafeMutableBufferPointer { ctorch_shape(handle, $0.baseAddress) }
        return sizes.map(Int.init)
    }

    public var rank: Int { Int(ctorch_dim(handle)) }
    public var elementCount: Int { Int(ctorch_numel(handle)) }

    public var dtype: DType {
        let code = ctorch_dtype(handle)
        // DType lists every c10::ScalarType of libtorch 1.13; another code means a libtorch whose
        // types this build was not written for.
        guard let dtype = DType(rawValue: code) else { preconditionFailure("unsupported libtorch scalar type \(code)") }
        return dtype
    }

    // MARK: creation from Swift arrays

    /// A tensor holding `values` (row-major) with the given shape.
    public convenience init<Element: TensorElement>(_ values: [Element], shape: [Int]) throws {
        let expected = shape.reduce(1, *)
        guard shape.allSatisfy({ $0 >= 0 }), expected == values.count else {
            throw TorchError(message: "shape \(shape) needs \(expected) elements, got \(values.count)")
        }
        let sizes = shape.map(Int64.init)
        let handle = values.withUnsafeBytes { bytes in
            sizes.withUnsafeBufferPointer { ctorch_from_data(bytes.baseAddress, $0.baseAddress, Int64(sizes.count), Element.dtype.rawValue) }
        }
        guard let handle else { throw TorchError.last() }
        self.init(owning: handle)
    }

    /// A one-dimensional tensor holding `values`.
    public convenience init<Element: TensorElement>(_ values: [Element]) throws {
        try self.init(values, shape: [values.count])
    }

    /// A zero-dimensional tensor.
    public convenience init<Element: TensorElement>(scalar: Element) throws {
        try self.init([scalar], shape: [])
    }

    // MARK: reading back

    /// The elements, converted to `Element`'s dtype, in row-major order.
    public func toArray<Element: TensorElement>(of type: Element.Type = Element.self) throws -> [Element] {
        let count = elementCount
        var result = [Element](unsafeUninitializedCapacity: count) { buffer, initialised in
            // Bool/number storage is plain bytes; zero-fill so the buffer is initialised even if the copy fails.
            if let base = buffer.baseAddress {
                UnsafeMutableRawPointer(base).initializeMemory(as: UInt8.self, repeating: 0, count: count * MemoryLayout<Element>.stride)
            }
            initialised = count
        }
        let status = result.withUnsafeMutableBytes { bytes in
            ctorch_copy_data(handle, Element.dtype.rawValue, bytes.baseAddress, Int64(bytes.count))
        }
        try TorchError.check(status)
        return result
    }

    public func floats() throws -> [Float] { try toArray(of: Float.self) }
    public func int64s() throws -> [Int64] { try toArray(of: Int64.self) }

    /// The raw bytes of the tensor in its own dtype (row-major), e.g. for serialisation.
    public func rawBytes() throws -> [UInt8] {
        let byteCount = elementCount * dtype.byteWidth
        var bytes = [UInt8](repeating: 0, count: byteCount)
        let status = bytes.withUnsafeMutableBytes {
            ctorch_copy_data(handle, dtype.rawValue, $0.baseAddress, Int64(byteCount))
        }
        try TorchError.check(status)
        return bytes
    }

    /// A tensor built from raw row-major bytes of `dtype`.
    public static func fromRawBytes(_ bytes: [UInt8], shape: [Int], dtype: DType) throws -> Tensor {
        let expected = shape.reduce(1, *) * dtype.byteWidth
        guard bytes.count == expected else {
            throw TorchError(message: "shape \(shape) of \(dtype) needs \(expected) bytes, got \(bytes.count)")
        }
        let sizes = shape.map(Int64.init)
        return try wrap(bytes.withUnsafeBytes { raw in
            sizes.withUnsafeBufferPointer { ctorch_from_data(raw.baseAddress, $0.baseAddress, Int64(sizes.count), dtype.rawValue) }
        })
    }

    /// The value of a one-element tensor.
    public func item() throws -> Double {
        var value = 0.0
        try TorchError.check(ctorch_item(handle, &value))
        return value
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { String(cString: ctorch_description(handle)) }
}

// MARK: factories

extension Tensor {
    static func withShape(_ shape: [Int], _ body: (UnsafePointer<Int64>?, Int64) -> ctorch_tensor?) throws -> Tensor {
        let sizes = shape.map(Int64.init)
        return try wrap(sizes.withUnsafeBufferPointer { body($0.baseAddress, Int64(sizes.count)) })
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32) throws -> Tensor {
        try withShape(shape) { ctorch_zeros($0, $1, dtype.rawValue) }
    }

    public static func ones(_ shape: [Int], dtype: DType = .float32) throws -> Tensor {
        try withShape(shape) { ctorch_ones($0, $1, dtype.rawValue) }
    }

    public static func full(_ shape: [Int], value: Double, dtype: DType = .float32) throws -> Tensor {
        try withShape(shape) { ctorch_full($0, $1, value, dtype.rawValue) }
    }

    /// Values start, start+step, ... below end (like torch.arange).
    public static func arange(_ start: Double = 0, _ end: Double, step: Double = 1, dtype: DType = .float32) throws -> Tensor {
        try wrap(ctorch_arange(start, end, step, dtype.rawValue))
    }

    /// Normal samples N(mean, std²) from `generator`, or from libtorch's process-wide default
    /// generator (see `Torch.manualSeed`) when nil.
    public static func normal(
        _ shape: [Int], mean: Double = 0, std: Double = 1, dtype: DType = .float32, generator: Generator? = nil
    ) throws -> Tensor {
        let standard = try withShape(shape) { ctorch_randn($0, $1, dtype.rawValue, generator?.handle) }
        return try standard * std + mean
    }

    /// Uniform samples in [low, high) from `generator` (nil: the default generator).
    public static func uniform(
        _ shape: [Int], low: Double = 0, high: Double = 1, dtype: DType = .float32, generator: Generator? = nil
    ) throws -> Tensor {
        let unit = try withShape(shape) { ctorch_rand($0, $1, dtype.rawValue, generator?.handle) }
        return try unit * (high - low) + low
    }

    /// Kaiming-He normal initialisation for a ReLU network, fan-in mode, like
    /// torch.nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"):
    /// std = sqrt(2 / fan_in), fan_in = shape[1] * product(shape[2...]).
    public static func kaimingNormal(_ shape: [Int], dtype: DType = .float32, generator: Generator? = nil) throws -> Tensor {
        guard shape.count >= 2 else {
            throw TorchError(message: "kaiming initialisation needs at least 2 dimensions, got shape \(shape)")
        }
        let fanIn = shape.dropFirst().reduce(1, *)
        return try normal(shape, std: (2.0 / Double(Swift.max(fanIn, 1))).squareRoot(), dtype: dtype, generator: generator)
    }

    /// Kaiming-He uniform initialisation with a = sqrt(5), the default of torch.nn.Conv2d and
    /// torch.nn.Linear weights: bound = 1 / sqrt(fan_in).
    public static func kaimingUniform(_ shape: [Int], dtype: DType = .float32, generator: Generator? = nil) throws -> Tensor {
        guard shape.count >= 2 else {
            throw TorchError(message: "kaiming initialisation needs at least 2 dimensions, got shape \(shape)")
        }
        let fanIn = shape.dropFirst().reduce(1, *)
        let bound = 1.0 / Double(Swift.max(fanIn, 1)).squareRoot()
        return try uniform(shape, low: -bound, high: bound, dtype: dtype, generator: generator)
    }
}

/// A seeded CPU random generator of its own, so results do not depend on what else in the
/// process draws from libtorch's global default generator (e.g. tests running in parallel).
public final class Generator {
    let handle: ctorch_generator

    public init(seed: UInt64) throws {
        guard let handle = ctorch_generator_create(seed) else { throw TorchError.last() }
        self.handle = handle
    }

    deinit { ctorch_generator_free(handle) }
}
