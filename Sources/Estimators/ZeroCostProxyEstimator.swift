import DetectionData
import Vision
import ZeroCostProxies

/// A zero-cost proxy as the search's estimator: the proxy's score of the untrained (or inherited) architecture
/// on one minibatch of training images, no training. It scores with `DetectorProxyScorer`, the
/// scorer the two-stage selection (`edgenas select-estimator`) ranks the proxies with, so a proxy
/// the selection chose scores the search's trials the same way. Named `proxy:NAME` in a config,
/// e.g. `proxy:params` or `proxy:synflow`; the search's front is then retrained fully.
public struct ZeroCostProxyEstimator: PerformanceEstimator {
    public static let namePrefix = "proxy:"

    public let proxy: ZeroCostProxy
    public let trainingSet: any DetectionDataset
    public let batchSize: Int
    public let seed: UInt64
    /// Pretrained weights the scored networks inherit (nil: scored at random initialisation).
    public let initialization: DetectorInitialization?

    public init(proxy: ZeroCostProxy, trainingSet: any DetectionDataset, batchSize: Int, seed: UInt64,
                initialization: DetectorInitialization? = nil) {
        self.proxy = proxy
        self.trainingSet = trainingSet
        self.batchSize = batchSize
        self.seed = seed
        self.initialization = initialization
    }

    public var name: String { Self.namePrefix + proxy.rawValue }
    public var isFullFidelity: Bool { false }

    public func estimate(_ architecture: DetectorArchitecture, trialNumber: Int, afterEpoch: EpochReport?) throws -> PerformanceEstimate {
        let scorer = DetectorProxyScorer(trainingSet: trainingSet, batchSize: batchSize, seed: seed, proxies: [proxy],
                                         initialization: initialization)
        let result = try scorer.scores(architecture)[0]
        return PerformanceEstimate(score: result.score, ap50: nil, seconds: result.seconds, epochs: 0)
    }
}
