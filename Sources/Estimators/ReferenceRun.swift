// What the selection needs from a training run and from the proxies, and where it keeps them.
import Foundation
import Vision
import ZeroCostProxies

/// One reference architecture trained fully, with what was recorded after its epochs.
/// Arrays are per epoch (index 0 = epoch 1); AP and validation loss are NaN after an epoch
/// that was not validated, and a run resumed from a checkpoint holds NaN in every array for
/// the epochs the checkpoint had already finished.
public struct ReferenceRun: Codable, Sendable, Hashable {
    /// `DetectorArchitecture.description`.
    public var architecture: String
    /// Mean training loss of each epoch.
    public var trainingLosses: [Double]
    /// Validation AP@0.5 after each epoch (the last one is the truth the strategies are ranked
    /// against; NaN where not validated).
    public var validationAP: [Double]
    /// Mean validation loss after each epoch (NaN where it was not measured).
    public var validationLosses: [Double]
    /// Seconds of training in each epoch.
    public var epochSeconds: [Double]
    /// Seconds of each epoch's validation pass (AP and loss; 0 for an epoch without one).
    public var evaluationSeconds: [Double]
    public var parameterCount: Int
    public var multiplyAccumulates: Int
    /// Runs that start from pretrained weights: validation AP@0.5 of the starting network
    /// (inherited weights, batch norm recalibrated, no training), the seconds that took
    /// (inheritance, recalibration, validation), and the share of parameters inherited.
    /// nil for runs from scratch.
    public var initialAP: Double?
    public var initialSeconds: Double?
    public var inheritedShare: Double?

    public init(architecture: String, trainingLosses: [Double], validationAP: [Double], validationLosses: [Double],
                epochSeconds: [Double], evaluationSeconds: [Double], parameterCount: Int, multiplyAccumulates: Int,
                initialAP: Double? = nil, initialSeconds: Double? = nil, inheritedShare: Double? = nil) {
        self.architecture = architecture
        self.trainingLosses = trainingLosses
        self.validationAP = validationAP
        self.validationLosses = validationLosses
        self.epochSeconds = epochSeconds
        self.evaluationSeconds = evaluationSeconds
        self.parameterCount = parameterCount
        self.multiplyAccumulates = multiplyAccumulates
        self.initialAP = initialAP
        self.initialSeconds = initialSeconds
        self.inheritedShare = inheritedShare
    }

    public var epochs: Int { validationAP.count }
    /// AP@0.5 after the full training.
    public var finalAP: Double { validationAP.last ?? .nan }
    /// Seconds of the full training plus its final validation: what a search trial costs without estimation.
    public var fullTrainingSeconds: Double { epochSeconds.reduce(0, +) + (evaluationSeconds.last ?? 0) }
}

/// Trains a reference architecture fully for the selection.
public protocol ReferenceTrainer {
    /// A run of `epochs` epochs validated after each of `validatedEpochs` (0: the starting
    /// network, when it is inherited); the other epochs' AP and validation loss are NaN.
    func train(_ architecture: DetectorArchitecture, epochs: Int, validatingAfter validatedEpochs: Set<Int>) throws -> ReferenceRun
}

/// References trained elsewhere (the search's queued jobs, by any process on any machine),
/// handed to the selection as its trainer: it trains nothing and returns their runs.
public struct TrainedReferenceRuns: ReferenceTrainer {
    public var runs: [String: ReferenceRun]

    public init(_ runs: [ReferenceRun]) {
        self.runs = Dictionary(runs.map { ($0.architecture, $0) }) { first, _ in first }
    }

    public func train(_ architecture: DetectorArchitecture, epochs: Int, validatingAfter validatedEpochs: Set<Int>) throws -> ReferenceRun {
        guard let run = runs[architecture.description] else {
            throw EstimatorSelectionError.incompleteRun(architecture: architecture.description, epochs: 0, expected: epochs)
        }
        return run
    }
}

/// Scores an untrained architecture with the zero-cost proxies.
public protocol ProxyScorer {
    func scores(_ architecture: DetectorArchitecture) throws -> [ZeroCostProxyScore]
}

public enum EstimatorSelectionError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidSetting(name: String, value: String, expected: String)
    case cacheSettingsDiffer(path: String, field: String, cached: String, requested: String)
    case unreadableCache(path: String, detail: String)
    case incompleteRun(architecture: String, epochs: Int, expected: Int)
    case missingValidation(architecture: String, epoch: Int)

    public var description: String {
        switch self {
        case .invalidSetting(let n, let v, let e): "\(n) = \(v); expected \(e)"
        case .cacheSettingsDiffer(let p, let f, let c, let r):
            "cache \(p) was made with \(f) = \(c), but this run asks for \(r); use another output directory or the same settings"
        case .unreadableCache(let p, let d): "cannot read cached result \(p): \(d)"
        case .incompleteRun(let a, let e, let x): "training of \(a) recorded \(e) epochs; expected \(x)"
        case .missingValidation(let a, let e):
            "the training of \(a) has no validation after epoch \(e), which a ranked strategy reads; "
                + "use another output directory (its runs were validated for other epoch budgets)"
        }
    }
}

/// Results kept per architecture in a directory, so that a rerun (or a resumed, interrupted
/// run) trains and scores only what is missing: `references/<arch>.json` (a `ReferenceRun`),
/// `proxies/<arch>.json` (its proxy scores), and `settings.json`, the settings they were made
/// with; a later run with different settings is refused rather than mixed in.
public struct SelectionCache: Sendable {
    public let directory: URL

    public init(directory: URL) { self.directory = directory }

    /// Records `settings` on first use; throws when the directory holds results of other settings.
    func claim(for settings: SelectionSettings) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent("settings.json")
        if let stored: SelectionSettings = try read(url) {
            for (field, cached, requested) in stored.differences(from: settings) {
                throw EstimatorSelectionError.cacheSettingsDiffer(path: url.path, field: field, cached: cached, requested: requested)
            }
        } else {
            try write(settings, to: url)
        }
    }

    func reference(_ architecture: DetectorArchitecture) throws -> ReferenceRun? {
        try read(referenceURL(architecture))
    }

    func store(_ run: ReferenceRun, for architecture: DetectorArchitecture) throws { try write(run, to: referenceURL(architecture)) }

    func proxies(_ architecture: DetectorArchitecture) throws -> [ZeroCostProxyScore]? { try read(proxyURL(architecture)) }

    func store(_ scores: [ZeroCostProxyScore], for architecture: DetectorArchitecture) throws {
        try write(scores, to: proxyURL(architecture))
    }

    private func referenceURL(_ a: DetectorArchitecture) -> URL {
        directory.appendingPathComponent("references").appendingPathComponent(a.description + ".json")
    }

    private func proxyURL(_ a: DetectorArchitecture) -> URL {
        directory.appendingPathComponent("proxies").appendingPathComponent(a.description + ".json")
    }

    private func read<Value: Decodable>(_ url: URL) throws -> Value? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do {
            return try SelectionJSON.decoder().decode(Value.self, from: Data(contentsOf: url))
        } catch {
            throw EstimatorSelectionError.unreadableCache(path: url.path, detail: "\(error)")
        }
    }

    /// Written beside the final name and moved over it, so an interrupted run leaves no half file.
    private func write<Value: Encodable>(_ value: Value, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try SelectionJSON.encoder().encode(value).write(to: url, options: .atomic)
    }
}
