import Foundation
import Hardware
import Testing
import Vision
@testable import LatencyBackends

/// Latencies from a known additive kernel cost model, so the predictor's answer is known:
/// each kernel kind has its own cost per MAC and per output element, plus a launch overhead.
private func syntheticLatency(_ architecture: DetectorArchitecture) throws -> Double {
    let graph = try DetectorGraph(architecture)
    var milliseconds = 0.4
    for node in graph.nodes {
        let kind = KernelFeatures.kind(of: node)
        let perMAC = kind.hasPrefix("dwconv") ? 4e-8 : kind.hasPrefix("gconv") ? 2e-8 : 1e-8
        let perElement = kind.hasPrefix("conv") || kind.hasPrefix("gconv") || kind.hasPrefix("dwconv") ? 2e-7 : 6e-7
        milliseconds += perMAC * Double(node.multiplyAccumulates) + perElement * Double(node.outputShape.elementCount) + 0.004
    }
    return milliseconds
}

struct LatencyPredictorTests {
    @Test func headSpaceDrawsAreDistinctAndRepeatable() throws {
        let space = DetectorHeadSpace.seed
        let first = try space.sample(40, seed: 7)
        #expect(try first == space.sample(40, seed: 7))
        #expect(try first != space.sample(40, seed: 8))
        #expect(Set(first).count == 40)
        #expect(first.allSatisfy { (try? $0.validate()) != nil && space.inputWidths.contains($0.inputWidthPixels) })
        // The seed's space: 2 kernels x 4 groups x 10 channel counts x 4 widths.
        let all = try space.allArchitectures()
        #expect(space.size == 320 && all.count == 320)
    }

    @Test func kernelSumsCountEveryNodeOnce() throws {
        let graph = try DetectorGraph(.baseline)
        let sums = KernelFeatures.sums(graph)
        #expect(sums.values.reduce(0) { $0 + $1[3] } == Double(graph.nodes.count))
        #expect(sums.values.reduce(0) { $0 + $1[0] } == Double(graph.multiplyAccumulates))
        // The baseline head: three depthwise 5x5 stride-1 convolutions plus the SPP's six.
        #expect(sums["dwconv-k5-s1"]?[3] == 9)
        #expect(sums["gconv-k1-s1"] == nil)
        let grouped = KernelFeatures.sums(try DetectorGraph(DetectorArchitecture(headGroups: 4)))
        #expect(grouped["gconv-k1-s1"]?[3] == 1)
    }

    @Test func heldOutArchitecturesArePredictedWithinOnePercent() throws {
        let architectures = try DetectorHeadSpace.seed.sample(60, seed: 11)
        let rows = try architectures.map { ArchitectureLatency(architecture: $0, milliseconds: try syntheticLatency($0)) }
        let predictor = try LatencyPredictor.fit(Array(rows[..<40]), backend: "synthetic", threads: 1)
        let accuracy = try predictor.accuracy(on: Array(rows[40...]))
        #expect(accuracy.count == 20)
        #expect(accuracy.maximumRelativeError < 0.01, "max relative error \(accuracy.maximumRelativeError)")
        #expect(accuracy.withinTenPercent == 1)
        #expect(predictor.trainingCount == 40 && predictor.trainingRMSE < 0.05)
    }

    @Test func aSavedPredictorLoadsAndPredictsTheSame() throws {
        let rows = try DetectorHeadSpace.seed.sample(30, seed: 3).map { ArchitectureLatency(architecture: $0, milliseconds: try syntheticLatency($0)) }
        let predictor = try LatencyPredictor.fit(rows, backend: "torch-fp32", threads: 1)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-predictor-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try predictor.save(to: file)
        let loaded = try LatencyPredictor.load(from: file)
        #expect(loaded == predictor)
        let probe = DetectorArchitecture(headKernelSize: 5, headGroups: 2, headChannels: 48, inputWidthPixels: 256)
        #expect(try loaded.predict(probe) == predictor.predict(probe))
        let backend = try #require(try LatencyBackendSpec.predictor(path: file.path).makeBackend() as? PredictorLatencyBackend)
        let measurement = try backend.measure(architecture: probe)
        #expect(backend.name == "predictor-torch-fp32")
        #expect(measurement.samplesMilliseconds == [try predictor.predict(probe)] && measurement.threads == 1)
    }

    @Test func unusableInputsAreNamed() throws {
        let headSpace = try DetectorHeadSpace.seed.sample(30, seed: 5)
            .map { ArchitectureLatency(architecture: $0, milliseconds: try syntheticLatency($0)) }
        let predictor = try LatencyPredictor.fit(headSpace, backend: "synthetic", threads: 1)
        let error = #expect(throws: LatencyPredictorError.self) {
            try predictor.predict(DetectorArchitecture(headKernelSize: 7))
        }
        guard case .unseenKernel(let kind, "k7-g1-c96-w320", _) = error else {
            Issue.record("expected an unseen-kernel error, got \(String(describing: error))")
            return
        }
        #expect(kind == "dwconv-k7-s1")
        #expect(throws: LatencyPredictorError.tooFewMeasurements(1)) {
            try LatencyPredictor.fit([headSpace[0]], backend: "x", threads: 1)
        }
        let negative = [headSpace[0], ArchitectureLatency(architecture: headSpace[1].architecture, milliseconds: -1)]
        #expect(throws: LatencyPredictorError.invalidLatency(architecture: headSpace[1].architecture.description, milliseconds: -1)) {
            try LatencyPredictor.fit(negative, backend: "x", threads: 1)
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-not-a-predictor-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(#"{"format": "something-else"}"#.utf8).write(to: file)
        let unreadable = #expect(throws: LatencyPredictorError.self) { try LatencyPredictor.load(from: file) }
        #expect(unreadable?.description.contains(file.path) == true)
    }
}
