import Foundation

// The result of INT8 post-training calibration, shared by every INT8 consumer: libtorch's
// quantized kernels (Hardware's `QuantizedDetector`) and the ONNX QDQ exporter. This file has no
// torch dependency: the types, the scale/zero-point arithmetic, the histogram percentile and the
// batch-norm folding are plain Swift, so a consumer can read a saved calibration without libtorch.
//
// Conventions (the same as PyTorch's observers and ONNX QuantizeLinear):
//   activations: quint8, per tensor, affine:  q = clamp(round(x / scale) + zeroPoint, qmin, qmax)
//   weights:     qint8, per output channel (axis 0), symmetric: zero point 0, range [-127, 127]
//   x ~= (q - zeroPoint) * scale.
// Weights are the batch-norm-folded convolution weights (`FoldedConvolution`): each
// convolution node deploys as one conv + bias (+ ReLU) operator.

/// How a per-tensor activation range is chosen from calibration data.
public enum CalibrationMethod: String, Codable, Hashable, Sendable, CaseIterable {
    /// The smallest and largest value seen over all calibration images.
    case minMax = "minmax"
    /// The `percentile`-th and (100 - `percentile`)-th percentiles of all values seen, read
    /// from a histogram between the observed extremes: clips rare outliers so the bulk of the
    /// distribution gets finer steps.
    case percentile
}

/// Settings of a calibration run.
public struct CalibrationOptions: Codable, Hashable, Sendable {
    public var method: CalibrationMethod
    /// Upper percentile for `.percentile` (e.g. 99.99); the lower one is 100 minus it.
    public var percentile: Double
    /// Histogram bins between the observed minimum and maximum for `.percentile`.
    public var histogramBins: Int
    /// Use 7-bit activations (0...127) instead of 0...255. FBGEMM's x86 kernels need it to avoid
    /// 16-bit overflow in their multiply-add; QNNPACK, oneDNN and ONNX Runtime do not.
    public var reduceRange: Bool
    /// One weight scale per convolution (its largest |w| / 127) instead of one per output
    /// channel: less accurate, but some NPUs (e.g. the i.MX 8M Plus's) run per-tensor models
    /// much faster. Per channel by default.
    public var perTensorWeights: Bool

    public init(method: CalibrationMethod = .minMax, percentile: Double = 99.99, histogramBins: Int = 2048, reduceRange: Bool = false,
                perTensorWeights: Bool = false) {
        self.method = method
        self.percentile = percentile
        self.histogramBins = histogramBins
        self.reduceRange = reduceRange
        self.perTensorWeights = perTensorWeights
    }

    /// Reads options saved before `perTensorWeights` existed as per channel.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        method = try container.decode(CalibrationMethod.self, forKey: .method)
        percentile = try container.decode(Double.self, forKey: .percentile)
        histogramBins = try container.decode(Int.self, forKey: .histogramBins)
        reduceRange = try container.decode(Bool.self, forKey: .reduceRange)
        perTensorWeights = try container.decodeIfPresent(Bool.self, forKey: .perTensorWeights) ?? false
    }

    /// Checks the values, naming the first bad field.
    public func validate() throws(QuantizationError) {
        guard percentile > 50, percentile <= 100 else {
            throw .invalidSetting("percentile", value: String(percentile), expected: "a percentile in (50, 100]")
        }
        guard histogramBins >= 16 else {
            throw .invalidSetting("histogramBins", value: String(histogramBins), expected: "at least 16 bins")
        }
    }

    /// The largest quantized activation value (255, or 127 with `reduceRange`).
    public var activationMaximum: Int { reduceRange ? 127 : 255 }
}

/// Per-tensor affine quantization of one activation (a graph node's output, or the image).
public struct ActivationQuantization: Codable, Hashable, Sendable {
    public var scale: Double
    /// In 0...255 (quint8).
    public var zeroPoint: Int
    /// The real range the quantization grid covers (always contains 0, so zero is exact).
    public var minimum: Double
    public var maximum: Double
    /// Whether the values were calibrated for this node, or copied from its input because the
    /// operation cannot change the range (pooling, slicing, shuffling, upsampling): quantized
    /// kernels and QDQ graphs keep the input's scale and zero point through those operations.
    public var inherited: Bool

    /// PyTorch's affine rule (MinMaxObserver._calculate_qparams): widen the range to contain
    /// 0, scale = (max - min) / (qmax - qmin), zeroPoint = qmin - round(min / scale) clamped
    /// to [qmin, qmax]; round half to even like torch.round. A zero-width range gets
    /// scale = Float.ulpOfOne so the grid stays valid.
    public init(minimum: Double, maximum: Double, quantizedMaximum: Int = 255) {
        let low = Swift.min(minimum, 0), high = Swift.max(maximum, 0)
        let scale = Swift.max((high - low) / Double(quantizedMaximum), Double(Float.ulpOfOne))
        let zero = (-low / scale).rounded(.toNearestOrEven)
        self.scale = scale
        self.zeroPoint = Int(Swift.min(Swift.max(zero, 0), Double(quantizedMaximum)))
        self.minimum = low
        self.maximum = high
        self.inherited = false
    }

    /// The same grid, marked as copied from an input.
    public var asInherited: ActivationQuantization {
        var copy = self
        copy.inherited = true
        return copy
    }
}

/// Per-output-channel symmetric quantization of a convolution's folded weight.
public struct WeightQuantization: Codable, Hashable, Sendable {
    /// One scale per output channel (axis 0): max |w| over the channel / 127. Zero points are 0.
    public var scales: [Double]

    /// Scales of a weight whose output channels are the first dimension of `shape`, stored
    /// row-major in `weight`. An all-zero channel gets scale 1 (any scale represents it). With
    /// `perTensor`, every channel gets the whole weight's scale (still one entry per channel, so
    /// every INT8 path reads it alike; the TFLite export writes it as one scale).
    public init(weight: [Float], shape: [Int], perTensor: Bool = false) {
        let channels = shape.first ?? 0
        let perChannel = channels > 0 ? weight.count / channels : 0
        func scale(_ values: ArraySlice<Float>) -> Double {
            let largest = values.reduce(Float(0)) { Swift.max($0, Swift.abs($1)) }
            return largest > 0 ? Double(largest) / Double(WeightQuantization.quantizedMaximum) : 1
        }
        if perTensor {
            scales = Array(repeating: scale(weight[...]), count: channels)
        } else {
            scales = (0..<channels).map { channel in scale(weight[(channel * perChannel)..<((channel + 1) * perChannel)]) }
        }
    }

    public init(scales: [Double]) { self.scales = scales }

    /// Weights use the symmetric range [-127, 127] (not -128): the grid is symmetric around 0,
    /// as ONNX Runtime's and TensorRT's symmetric weight quantization expect.
    public static let quantizedMaximum = 127
}

/// Everything an INT8 network needs besides the float weights: one activation grid per graph
/// node output (plus the image) and one weight grid per convolution node, keyed by the
/// `DetectorGraph` node names. Saved as JSON (`write(to:)`), read with `init(contentsOf:)`.
public struct QuantizationParameters: Codable, Hashable, Sendable {
    /// Bumped when a field changes meaning; readers refuse other versions.
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    /// The architecture's short name (`DetectorArchitecture.description`).
    public var architecture: String
    public var options: CalibrationOptions
    /// Calibration images used.
    public var imageCount: Int
    /// Activation grids keyed by node name, plus `DetectorGraph.inputName` ("image") for the
    /// network input. Every node has one except the final `.detectionOutput` node, which runs in
    /// float (sigmoid and softmax of dequantized branch outputs).
    public var activations: [String: ActivationQuantization]
    /// Weight grids of the batch-norm-folded weight, keyed by convolution node name.
    public var weights: [String: WeightQuantization]

    public init(architecture: String, options: CalibrationOptions, imageCount: Int,
                activations: [String: ActivationQuantization], weights: [String: WeightQuantization]) {
        formatVersion = Self.currentFormatVersion
        self.architecture = architecture
        self.options = options
        self.imageCount = imageCount
        self.activations = activations
        self.weights = weights
    }

    /// The activation grid of `node` (or "image").
    public func activation(_ node: String) throws(QuantizationError) -> ActivationQuantization {
        guard let value = activations[node] else { throw .missingNode(node, kind: "activation") }
        return value
    }

    /// The weight grid of convolution `node`.
    public func weight(_ node: String) throws(QuantizationError) -> WeightQuantization {
        guard let value = weights[node] else { throw .missingNode(node, kind: "weight") }
        return value
    }

    /// Pretty-printed JSON with sorted keys (stable diffs).
    public func write(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url, options: .atomic)
    }

    /// Reads a file written by `write(to:)`, refusing other format versions.
    public init(contentsOf url: URL) throws {
        let decoded = try JSONDecoder().decode(QuantizationParameters.self, from: Data(contentsOf: url))
        guard decoded.formatVersion == Self.currentFormatVersion else {
            throw QuantizationError.unsupportedFormat(path: url.path, version: decoded.formatVersion,
                                                      expected: Self.currentFormatVersion)
        }
        self = decoded
    }
}

/// Why quantization could not be done or read.
public enum QuantizationError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidSetting(String, value: String, expected: String)
    case missingNode(String, kind: String)
    case noCalibrationImages
    case unsupportedFormat(path: String, version: Int, expected: Int)
    case architectureMismatch(parameters: String, network: String)

    public var description: String {
        switch self {
        case let .invalidSetting(field, value, expected): "calibration setting '\(field)' is \(value); expected \(expected)"
        case let .missingNode(node, kind): "quantization parameters have no \(kind) grid for node '\(node)'"
        case .noCalibrationImages: "calibration needs at least one image"
        case let .unsupportedFormat(path, version, expected):
            "\(path): quantization parameters format version \(version); this build reads version \(expected)"
        case let .architectureMismatch(parameters, network):
            "quantization parameters were calibrated for \(parameters), not \(network)"
        }
    }
}

// MARK: histogram percentile

/// A fixed-range histogram of values, for percentile calibration. Bin i covers
/// [lower + i * width, lower + (i + 1) * width); the upper end goes into the last bin, values
/// outside the range are not counted (like torch.histc).
public struct ValueHistogram: Hashable, Sendable {
    public let lower: Double
    public let upper: Double
    public private(set) var counts: [Int]

    public init(lower: Double, upper: Double, bins: Int) {
        self.lower = lower
        self.upper = upper
        counts = Array(repeating: 0, count: bins)
    }

    public var total: Int { counts.reduce(0, +) }
    var width: Double { (upper - lower) / Double(counts.count) }

    public mutating func add<Values: Collection>(_ values: Values) where Values.Element == Float {
        let bins = counts.count
        guard upper > lower else {
            counts[0] += values.count
            return
        }
        let factor = Double(bins) / (upper - lower)
        for value in values {
            let position = (Double(value) - lower) * factor
            guard position >= 0, position <= Double(bins) else { continue }
            counts[Swift.min(Int(position), bins - 1)] += 1
        }
    }

    /// The value below which `percent` % of the counted values lie, interpolating linearly
    /// inside the bin where the cumulative count reaches the target (values spread evenly
    /// within a bin). nil when nothing was counted.
    public func percentile(_ percent: Double) -> Double? {
        let count = total
        guard count > 0 else { return nil }
        guard upper > lower else { return lower }
        let target = Swift.min(Swift.max(percent, 0), 100) / 100 * Double(count)
        var before = 0.0
        for (bin, binCount) in counts.enumerated() where binCount > 0 {
            let after = before + Double(binCount)
            if after >= target {
                let fraction = Swift.max(0, target - before) / Double(binCount)
                return lower + (Double(bin) + fraction) * width
            }
            before = after
        }
        return upper
    }
}

// MARK: batch-norm folding

/// A convolution with its batch norm folded in: the weight and bias one deployed conv
/// operator uses. For output channel c, with s = gamma[c] / sqrt(variance[c] + eps):
/// weight'[c] = weight[c] * s and bias'[c] = beta[c] - mean[c] * s (the convolution itself has
/// no bias). Conv then BN in evaluation mode equals conv with these, up to float rounding.
public struct FoldedConvolution: Hashable, Sendable {
    /// Row-major [out, in / groups, k, k].
    public var weight: [Float]
    public var weightShape: [Int]
    /// One per output channel.
    public var bias: [Float]

    /// Folds a batch norm (evaluation mode: running statistics) into a bias-free convolution.
    /// Arithmetic in Double, rounded to Float once.
    public init(weight: [Float], weightShape: [Int], gamma: [Float], beta: [Float], mean: [Float], variance: [Float],
                eps: Double) throws(QuantizationError) {
        let channels = weightShape.first ?? 0
        guard weightShape.count == 4, weight.count == weightShape.reduce(1, *), channels > 0 else {
            throw .invalidSetting("weightShape", value: "\(weightShape)", expected: "[out, in/groups, k, k] matching \(weight.count) values")
        }
        for (name, values) in [("gamma", gamma), ("beta", beta), ("mean", mean), ("variance", variance)] where values.count != channels {
            throw .invalidSetting(name, value: "\(values.count) values", expected: "\(channels) (one per output channel)")
        }
        let perChannel = weight.count / channels
        var folded = weight
        var bias = [Float](repeating: 0, count: channels)
        for channel in 0..<channels {
            let factor = Double(gamma[channel]) / (Double(variance[channel]) + eps).squareRoot()
            for index in (channel * perChannel)..<((channel + 1) * perChannel) {
                folded[index] = Float(Double(weight[index]) * factor)
            }
            bias[channel] = Float(Double(beta[channel]) - Double(mean[channel]) * factor)
        }
        self.weight = folded
        self.weightShape = weightShape
        self.bias = bias
    }
}
