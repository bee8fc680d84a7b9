// What the search pipeline stores in a study, typed: one value per trial (`TrialRecord`), one per
// retrained candidate (`RetrainedResult`), and the study-level results of its stages (profile,
// selection), all as JSON attributes that a rerun, the report, the dashboard and workers read.
import Estimators
import Foundation
import Hardware
import Search

/// What the search pipeline measured and estimated for one trial: written once, as the trial's
/// user attribute `record` (JSON), before its objective values; read back by the report, the
/// dashboard, the retraining stage and a rerun (one typed value instead of a dozen strings and
/// positional objective values).
public struct TrialRecord: Codable, Hashable, Sendable {
    /// `DetectorArchitecture.description`.
    public var architecture: String
    /// Median latency on the latency backend, and its interquartile range.
    public var latencyMilliseconds: Double
    public var latencyInterquartileRange: Double
    public var latencyBackend: String
    /// The architecture this network was timed against in alternating runs, its latency being
    /// the ratio times that trial's (`SearchPipeline.measureLatency`); nil: timed alone.
    public var latencyReference: String?
    public var parameters: Int
    /// Peak activation memory, float32.
    public var memoryMegabytes: Double
    public var multiplyAccumulates: Int
    /// The estimator's name and score (AP@0.5 for the AP-based estimators).
    public var estimator: String
    public var score: Double
    /// AP@0.5 the estimate measured at its fidelity, if any.
    public var ap50: Double?
    public var estimateSeconds: Double
    public var estimateEpochs: Int
    /// The earlier trial of the same architecture whose results this one took (nil: it was
    /// measured and estimated itself).
    public var duplicateOf: Int?
    /// Integer operators an NPU compiler left to the CPU because the NPU lacks them (the `vela`
    /// backend; nil for the others): its CPU operators beyond the model's float input and head.
    public var npuFallbackOperators: Int?
    /// The epochs a pruned trial trained before its pruner stopped it (nil: not pruned); its
    /// `score` and `ap50` are then its AP@0.5 at that epoch.
    public var prunedAfterEpoch: Int?

    public static let attribute = "record"
    /// The trial attribute naming the process that runs it, `host:pid`, written when the
    /// trial starts (many workers can share a study; a dead one's trial is then known).
    public static let workerAttribute = "worker"
    public static let thisWorker = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)"

    public init(architecture: String, latencyMilliseconds: Double, latencyInterquartileRange: Double, latencyBackend: String,
                parameters: Int, memoryMegabytes: Double, multiplyAccumulates: Int, estimator: String, score: Double, ap50: Double?,
                estimateSeconds: Double, estimateEpochs: Int, duplicateOf: Int? = nil) {
        self.architecture = architecture
        self.latencyMilliseconds = latencyMilliseconds
        self.latencyInterquartileRange = latencyInterquartileRange
        self.latencyBackend = latencyBackend
        self.parameters = parameters
        self.memoryMegabytes = memoryMegabytes
        self.multiplyAccumulates = multiplyAccumulates
        self.estimator = estimator
        self.score = score
        self.ap50 = ap50
        self.estimateSeconds = estimateSeconds
        self.estimateEpochs = estimateEpochs
        self.duplicateOf = duplicateOf
    }

    /// The value of a search objective this record holds (AP@0.5: the estimator's score).
    public func metric(_ objective: SearchObjective) -> Double? {
        switch objective {
        case .ap50: score
        case .latency: latencyMilliseconds
        case .params: Double(parameters)
        case .memory: memoryMegabytes
        }
    }

    /// The record the pipeline wrote on `trial`; nil for a trial it did not evaluate (failed,
    /// running, or another program's).
    public init?(_ trial: FrozenTrial) {
        guard let text = trial.userAttributes[Self.attribute], let record = try? decodeJSONText(Self.self, text) else { return nil }
        self = record
    }
}

/// The result of fully retraining one candidate after a low-fidelity search, kept as the
/// study attribute `retrained.<trial number>` (finished trials cannot change).
public struct RetrainedResult: Codable, Hashable, Sendable {
    public var trialNumber: Int
    public var architecture: String
    public var ap50: Double
    /// AP@0.5 of the same weights quantized to INT8 (calibrated on training images), as the
    /// board runs them; nil where it could not be measured (no quantized engine, no weights).
    public var int8AP50: Double?
    public var seconds: Double
    public var epochs: Int

    public init(trialNumber: Int, architecture: String, ap50: Double, int8AP50: Double? = nil, seconds: Double, epochs: Int) {
        self.trialNumber = trialNumber
        self.architecture = architecture
        self.ap50 = ap50
        self.int8AP50 = int8AP50
        self.seconds = seconds
        self.epochs = epochs
    }

    public static let attributePrefix = "retrained."
}

/// The study attributes the pipeline writes, so a rerun, `edgenas report` and the dashboard
/// read the same facts.
public enum PipelineAttribute {
    public static let kind = "edgenas_pipeline"
    public static let estimator = "estimator", estimatorReason = "estimator_reason", samplerReason = "sampler_reason"
    public static let objectives = "objectives", baseModel = "base_model", baselineTrial = "baseline_trial"
    public static let budgetTrials = "budget_trials", budgetHours = "budget_hours", latencyBackend = "latency_backend"
    public static let fullTrainingSeconds = "full_training_seconds_estimate", searchSeconds = "search_seconds"
    public static let dataset = "dataset", fullEpochs = "full_epochs"
    /// Optional results of other stages, as JSON (written by the profile and selection stages).
    public static let layerProfile = "layer_profile", estimatorSelection = "estimator_selection"
    public static let selectionSeconds = "selection_seconds"
}

/// The per-layer latency of the base model, written by the profile stage as the study
/// attribute `layer_profile` (JSON).
public struct LayerProfileSummary: Codable, Hashable, Sendable {
    public struct Layer: Codable, Hashable, Sendable {
        public var name: String
        public var block: String
        public var milliseconds: Double

        public init(name: String, block: String, milliseconds: Double) {
            self.name = name
            self.block = block
            self.milliseconds = milliseconds
        }
    }

    public var backend: String
    public var architecture: String
    public var layers: [Layer]

    public init(backend: String, architecture: String, layers: [Layer]) {
        self.backend = backend
        self.architecture = architecture
        self.layers = layers
    }

    public init(_ profile: LayerProfile) {
        self.init(backend: "\(profile.backend) \(profile.precision)", architecture: profile.architecture,
                  layers: profile.layers.map { Layer(name: $0.name, block: $0.block.rawValue, milliseconds: $0.medianMilliseconds) })
    }
}

/// How each candidate estimator ranked architectures against full training, written by the
/// selection stage as the study attribute `estimator_selection` (JSON). It keeps the fully
/// trained references too: a `predictor:NAME` estimator learns from them, and a front candidate
/// that is one of them needs no retraining.
public struct EstimatorSelectionSummary: Codable, Hashable, Sendable {
    public struct Row: Codable, Hashable, Sendable {
        public var name: String
        public var kendallTau: Double
        public var spearmanRho: Double
        public var secondsPerArchitecture: Double

        public init(name: String, kendallTau: Double, spearmanRho: Double, secondsPerArchitecture: Double) {
            self.name = name
            self.kendallTau = kendallTau
            self.spearmanRho = spearmanRho
            self.secondsPerArchitecture = secondsPerArchitecture
        }
    }

    /// A reference architecture and its AP@0.5 after full training.
    public struct Reference: Codable, Hashable, Sendable {
        public var architecture: String
        public var ap50: Double

        public init(architecture: String, ap50: Double) {
            self.architecture = architecture
            self.ap50 = ap50
        }
    }

    /// Best Kendall tau first.
    public var rows: [Row]
    /// The strategy the search uses (a rank-table name).
    public var chosen: String
    public var references: [Reference]
    /// Mean seconds of one reference's full training.
    public var meanFullTrainingSeconds: Double

    public init(rows: [Row], chosen: String, references: [Reference] = [], meanFullTrainingSeconds: Double = .nan) {
        self.rows = rows
        self.chosen = chosen
        self.references = references
        self.meanFullTrainingSeconds = meanFullTrainingSeconds
    }
}

/// The report of one or more studies (one Pareto front per study's estimator): an HTML page
/// with inline SVG, the SVG files, and CSV/JSON of every trial.

/// A value as compact JSON text, for a study attribute.
func jsonText(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// The value a `jsonText` attribute holds.
func decodeJSONText<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try decoder.decode(type, from: Data(text.utf8))
}

/// Seconds as 1h02m, 3m05s or 12s.
