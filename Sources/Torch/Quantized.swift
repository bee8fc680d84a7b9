import Foundation
import CTorch

/// libtorch's quantized (INT8) engines: which exist in this build and which one is selected.
/// The selection is process-wide (at::globalContext), so select before prepacking weights and
/// keep it while running them.
public enum QuantizedEngine {
    /// Names libtorch supports, e.g. ["qnnpack", "none", "onednn"]; "none" cannot run kernels.
    public static var supported: [String] { TorchLibrary.supportedQuantizedEngines }

    /// The engine quantized kernels use now.
    public static var current: String { String(cString: ctorch_quantized_engine()) }

    /// Selects `name`; throws libtorch's message (listing the supported ones) for another name.
    public static func select(_ name: String) throws {
        try TorchError.check(ctorch_set_quantized_engine(name))
    }

    /// Runs `body` with `name` selected while no other thread selects an engine through here:
    /// weights prepacked for one engine and run while another thread had selected the other gave
    /// other results (a test comparing QNNPACK with onnxruntime measured 0.2 or 0.7 steps
    /// depending on which test ran beside it). Reentrant.
    public static func using<Result>(_ name: String, _ body: () throws -> Result) throws -> Result {
        lock.lock()
        defer { lock.unlock() }
        try select(name)
        return try body()
    }

    private static let lock = NSRecursiveLock()
}

extension Tensor {
    /// Per-tensor affine quantization (at::quantize_per_tensor).
    public func quantized(scale: Double, zeroPoint: Int, dtype: DType = .quint8) throws -> Tensor {
        try Tensor.wrap(ctorch_quantize_per_tensor(handle, scale, Int64(zeroPoint), dtype.rawValue))
    }

    /// Per-channel affine quantization along `axis` (at::quantize_per_channel).
    public func quantized(scales: [Double], zeroPoints: [Int], axis: Int, dtype: DType = .qint8) throws -> Tensor {
        let scaleTensor = try Tensor(scales), zeroTensor = try Tensor(zeroPoints.map(Int64.init))
        return try Tensor.wrap(ctorch_quantize_per_channel(handle, scaleTensor.handle, zeroTensor.handle, Int64(axis), dtype.rawValue))
    }

    /// The float values a quantized tensor stands for.
    public func dequantized() throws -> Tensor { try Tensor.wrap(ctorch_dequantize(handle)) }

    /// The stored integers of a quantized tensor.
    public func integerRepresentation() throws -> Tensor { try Tensor.wrap(ctorch_int_repr(handle)) }

    /// Scale and zero point of a per-tensor quantized tensor.
    public func quantizationGrid() throws -> (scale: Double, zeroPoint: Int) {
        var scale = 0.0, zeroPoint: Int64 = 0
        try TorchError.check(ctorch_quantized_grid(handle, &scale, &zeroPoint))
        return (scale, Int(zeroPoint))
    }
}

/// A quantized convolution: qint8 weight and float bias prepacked once for the engine selected
/// at creation (quantized::conv2d_prepack), then run on quint8 inputs.
public final class PackedQuantizedConv2d {
    private let handle: ctorch_packed_conv

    /// `weight` is a quantized [out, in/groups, k, k] tensor, `bias` float [out] or nil.
    public init(weight: Tensor, bias: Tensor?, stride: Int, padding: Int, dilation: Int = 1, groups: Int) throws {
        let strides = [Int64(stride), Int64(stride)], paddings = [Int64(padding), Int64(padding)]
        let dilations = [Int64(dilation), Int64(dilation)]
        let packed = strides.withUnsafeBufferPointer { s in
            paddings.withUnsafeBufferPointer { p in
                dilations.withUnsafeBufferPointer { d in
                    ctorch_quantized_conv2d_prepack(weight.handle, bias?.handle, s.baseAddress, p.baseAddress, d.baseAddress, Int64(groups))
                }
            }
        }
        guard let packed else { throw TorchError.last() }
        handle = packed
    }

    deinit { ctorch_packed_conv_free(handle) }

    /// The convolution (+ ReLU when `relu`) of a quint8 input, requantized to (scale, zeroPoint).
    public func callAsFunction(_ input: Tensor, relu: Bool, scale: Double, zeroPoint: Int) throws -> Tensor {
        try Tensor.wrap(ctorch_quantized_conv2d(input.handle, handle, relu, scale, Int64(zeroPoint)))
    }
}

/// Quantized operations whose output grid is a parameter.
public enum QuantizedFunctional {
    /// a + b (then ReLU when `relu`) on the grid (scale, zeroPoint).
    public static func add(_ a: Tensor, _ b: Tensor, relu: Bool, scale: Double, zeroPoint: Int) throws -> Tensor {
        try Tensor.wrap(ctorch_quantized_add(a.handle, b.handle, relu, scale, Int64(zeroPoint)))
    }

    /// Concatenation along `dim` on the grid (scale, zeroPoint).
    public static func cat(_ tensors: [Tensor], dim: Int, scale: Double, zeroPoint: Int) throws -> Tensor {
        let handles: [ctorch_tensor?] = tensors.map(\.handle)
        return try Tensor.wrap(handles.withUnsafeBufferPointer {
            ctorch_quantized_cat($0.baseAddress, Int64(handles.count), Int64(dim), scale, Int64(zeroPoint))
        })
    }
}
