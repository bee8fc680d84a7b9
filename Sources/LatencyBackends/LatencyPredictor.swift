import Estimation
import Foundation
import Hardware
import Vision

/// An architecture and its measured latency: one training or test row of a predictor.
public struct ArchitectureLatency: Codable, Hashable, Sendable {
    public var architecture: DetectorArchitecture
    /// Median latency in milliseconds.
    public var milliseconds: Double

    public init(architecture: DetectorArchitecture, milliseconds: Double) {
        self.architecture = architecture
        self.milliseconds = milliseconds
    }

    public init(_ measurement: LatencyMeasurement) throws {
        architecture = try DetectorArchitecture(shortName: measurement.architecture)
        milliseconds = measurement.median
    }
}

/// Kernel-level features of a network, in the spirit of nn-Meter: the network is cut into
/// kernels (the operators a runtime launches: convolution + batch norm + ReLU fused, pooling,
/// concatenation, ...), kernels of one kind share a cost model, and the network's latency is
/// the sum of its kernels' latencies.
///
/// nn-Meter fits one regressor per kernel kind on measured kernels. Here only end-to-end
/// latencies are measured, so every kernel kind gets a linear cost model
/// `a * MACs + b * input elements + c * output elements + d * launches`, and because a sum of
/// linear models is linear in the summed features, one regression over the per-kind sums
/// fits all of them at once.
public enum KernelFeatures {
    /// The kernel kind of a graph node: convolutions by kernel size, stride and grouping
    /// (dense, grouped, depthwise behave differently per MAC), other operators by operation.
    public static func kind(of node: GraphNode) -> String {
        switch node.operation {
        case .convolution(let conv):
            let shape = conv.isDepthwise ? "dwconv" : conv.groups > 1 ? "gconv" : "conv"
            return "\(shape)-k\(conv.kernelSize)-s\(conv.stride)"
        case .maxPool: return "maxpool"
        case .averagePool: return "avgpool"
        case .upsampleNearest: return "upsample"
        case .concatenate: return "concat"
        case .add: return "add"
        case .channelSlice: return "slice"
        case .channelShuffle: return "shuffle"
        case .detectionOutput: return "output"
        }
    }

    /// The four summed quantities of each kernel kind, in the order of `names(kinds:)`.
    static let quantities = ["macs", "input_elements", "output_elements", "launches"]

    /// Per-kind sums over `graph`'s nodes: kind -> [MACs, input elements, output elements, launches].
    public static func sums(_ graph: DetectorGraph) -> [String: [Double]] {
        var elements: [String: Int] = [DetectorGraph.inputName: graph.architecture.imageShape.elementCount]
        var sums: [String: [Double]] = [:]
        for node in graph.nodes {
            let inputElements = node.inputs.reduce(0) { $0 + (elements[$1] ?? 0) }
            let row = [Double(node.multiplyAccumulates), Double(inputElements), Double(node.outputShape.elementCount), 1]
            let key = kind(of: node)
            var total = sums[key] ?? [0, 0, 0, 0]
            for index in total.indices { total[index] += row[index] }
            sums[key] = total
            elements[node.name] = node.outputShape.elementCount
        }
        return sums
    }

    /// Column names for `kinds`, e.g. `dwconv-k5-s1.macs`.
    public static func names(kinds: [String]) -> [String] {
        kinds.flatMap { kind in quantities.map { "\(kind).\($0)" } }
    }
}

/// A latency predictor learned from measured architectures: kernel-level features
/// (`KernelFeatures`) and a Bayesian ridge regression on standardised columns (the
/// regularisation keeps the fit stable where kinds scale together, as the backbone's do with
/// the input size). Saved and loaded as JSON.
public struct LatencyPredictor: Codable, Hashable, Sendable {
    /// Written into the file so a wrong file is recognised.
    public static let formatName = "edgenas-latency-predictor"
    public static let formatVersion = 1

    public var format: String
    public var version: Int
    /// The backend whose measurements it learned (e.g. "torch-fp32") and its thread count.
    public var backend: String
    public var threads: Int
    /// The kernel kinds seen in training, in column order; an architecture with another
    /// kind cannot be predicted.
    public var kernelKinds: [String]
    public var featureNames: [String]
    public var featureMeans: [Double]
    public var featureScales: [Double]
    public var regression: BayesianRidge
    public var trainingCount: Int
    /// Root-mean-square error on the training rows, in milliseconds.
    public var trainingRMSE: Double

    /// Fits a predictor to `rows` measured on `backend` with `threads` threads.
    public static func fit(_ rows: [ArchitectureLatency], backend: String, threads: Int) throws -> LatencyPredictor {
        guard rows.count >= 2 else { throw LatencyPredictorError.tooFewMeasurements(rows.count) }
        if let bad = rows.first(where: { !($0.milliseconds > 0 && $0.milliseconds.isFinite) }) {
            throw LatencyPredictorError.invalidLatency(architecture: bad.architecture.description, milliseconds: bad.milliseconds)
        }
        let sums = try rows.map { try KernelFeatures.sums(DetectorGraph($0.architecture)) }
        let kinds = Set(sums.flatMap(\.keys)).sorted()
        let raw = sums.map { row in kinds.flatMap { row[$0] ?? [0, 0, 0, 0] } }
        let width = raw[0].count, count = Double(raw.count)
        let means = (0..<width).map { column in raw.reduce(0) { $0 + $1[column] } / count }
        let scales = (0..<width).map { column in
            let spread = (raw.reduce(0) { $0 + ($1[column] - means[column]) * ($1[column] - means[column]) } / count).squareRoot()
            // A column that is the same in every row carries no information; 1 keeps it at 0.
            return spread > 0 ? spread : 1
        }
        let standardised = raw.map { row in (0..<width).map { (row[$0] - means[$0]) / scales[$0] } }
        var regression = BayesianRidge()
        try regression.fit(features: standardised, targets: rows.map(\.milliseconds))
        let fitted = try regression.predict(standardised)
        let rmse = (zip(fitted, rows).reduce(0) { $0 + ($1.0 - $1.1.milliseconds) * ($1.0 - $1.1.milliseconds) } / count).squareRoot()
        return LatencyPredictor(
            format: formatName, version: formatVersion, backend: backend, threads: threads, kernelKinds: kinds,
            featureNames: KernelFeatures.names(kinds: kinds), featureMeans: means, featureScales: scales,
            regression: regression, trainingCount: rows.count, trainingRMSE: rmse)
    }

    /// Predicted latency of `architecture` in milliseconds.
    public func predict(_ architecture: DetectorArchitecture) throws -> Double {
        let sums = KernelFeatures.sums(try DetectorGraph(architecture))
        if let unseen = sums.keys.sorted().first(where: { !kernelKinds.contains($0) }) {
            throw LatencyPredictorError.unseenKernel(kind: unseen, architecture: architecture.description, known: kernelKinds)
        }
        let raw = kernelKinds.flatMap { sums[$0] ?? [0, 0, 0, 0] }
        let row = (0..<raw.count).map { (raw[$0] - featureMeans[$0]) / featureScales[$0] }
        let milliseconds = try regression.predict([row])[0]
        guard milliseconds > 0, milliseconds.isFinite else {
            throw LatencyPredictorError.nonPositivePrediction(architecture: architecture.description, milliseconds: milliseconds)
        }
        return milliseconds
    }

    /// How well the predictor does on measured `rows` it was not fit on.
    public func accuracy(on rows: [ArchitectureLatency]) throws -> PredictionAccuracy {
        let predicted = try rows.map { try predict($0.architecture) }
        return PredictionAccuracy(predicted: predicted, measured: rows.map(\.milliseconds))
    }

    public func save(to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            try encoder.encode(self).write(to: url, options: .atomic)
        } catch {
            throw HardwareError.cannotWrite(path: url.path, reason: "\(error)")
        }
    }

    public static func load(from url: URL) throws -> LatencyPredictor {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw LatencyPredictorError.unreadableFile(path: url.path, reason: "\(error.localizedDescription)")
        }
        let predictor: LatencyPredictor
        do { predictor = try JSONDecoder().decode(LatencyPredictor.self, from: data) } catch {
            throw LatencyPredictorError.unreadableFile(path: url.path, reason: "not a latency predictor JSON file: \(error)")
        }
        guard predictor.format == formatName, predictor.version == formatVersion else {
            throw LatencyPredictorError.unreadableFile(
                path: url.path, reason: "format '\(predictor.format)' version \(predictor.version); expected '\(formatName)' version \(formatVersion)")
        }
        guard predictor.featureNames.count == predictor.kernelKinds.count * KernelFeatures.quantities.count,
              predictor.featureMeans.count == predictor.featureNames.count,
              predictor.featureScales.count == predictor.featureNames.count,
              predictor.featureScales.allSatisfy({ $0 > 0 }) else {
            throw LatencyPredictorError.unreadableFile(path: url.path, reason: "feature names, means and scales do not match its kernel kinds")
        }
        return predictor
    }
}

/// Accuracy figures of predictions against measurements.
public struct PredictionAccuracy: Codable, Hashable, Sendable {
    public var count: Int
    /// Share of predictions within +-10 % of the measurement (0...1).
    public var withinTenPercent: Double
    /// Root-mean-square error in milliseconds.
    public var rmse: Double
    /// Mean of |predicted - measured| / measured.
    public var meanAbsolutePercentageError: Double
    /// Largest |predicted - measured| / measured.
    public var maximumRelativeError: Double

    public init(predicted: [Double], measured: [Double]) {
        precondition(predicted.count == measured.count, "one prediction per measurement")
        let relative = zip(predicted, measured).map { abs($0 - $1) / $1 }
        let n = Double(max(predicted.count, 1))
        count = predicted.count
        withinTenPercent = Double(relative.filter { $0 <= 0.10 }.count) / n
        rmse = (zip(predicted, measured).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / n).squareRoot()
        meanAbsolutePercentageError = relative.reduce(0, +) / n
        maximumRelativeError = relative.max() ?? 0
    }
}

/// A predictor used as a latency backend: the search gets a latency in microseconds of
/// arithmetic instead of seconds of measurement. The measurement holds the prediction as
/// its one sample, with no warm-up.
public struct PredictorLatencyBackend: LatencyBackend {
    public var predictor: LatencyPredictor

    public init(predictor: LatencyPredictor) { self.predictor = predictor }

    public var name: String { "predictor-\(predictor.backend)" }

    public func measure(architecture: DetectorArchitecture) throws -> LatencyMeasurement {
        let milliseconds = try predictor.predict(architecture)
        return try LatencyMeasurement(backend: name, architecture: architecture.description, threads: predictor.threads,
                                      warmupRuns: 0, samples: TimedSamples(reported: [milliseconds], stopReason: .maximumRuns))
    }
}

public enum LatencyPredictorError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooFewMeasurements(Int)
    case invalidLatency(architecture: String, milliseconds: Double)
    case unseenKernel(kind: String, architecture: String, known: [String])
    case nonPositivePrediction(architecture: String, milliseconds: Double)
    case unreadableFile(path: String, reason: String)

    public var description: String {
        switch self {
        case .tooFewMeasurements(let count): "a latency predictor needs at least 2 measured architectures; got \(count)"
        case .invalidLatency(let architecture, let milliseconds):
            "measured latency of \(architecture) is \(milliseconds) ms; expected a positive finite number"
        case .unseenKernel(let kind, let architecture, let known):
            "architecture \(architecture) has \(kind) kernels, which the predictor never saw in training "
                + "(it knows \(known.joined(separator: ", "))); measure some architectures with them and refit"
        case .nonPositivePrediction(let architecture, let milliseconds):
            "the predictor gives \(architecture) \(milliseconds) ms; it lies too far outside the measured architectures"
        case .unreadableFile(let path, let reason): "cannot read latency predictor \(path): \(reason)"
        }
    }
}
