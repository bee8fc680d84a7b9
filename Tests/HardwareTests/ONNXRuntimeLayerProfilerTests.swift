import Foundation
import Testing
import Vision
@testable import Hardware

struct ONNXRuntimeLayerProfilerTests {
    @Test func kernelNamesBelongToTheirGraphNodes() throws {
        let graph = try DetectorGraph(tinyArchitecture)
        var index: [String: Int] = [:]
        for (position, node) in graph.nodes.enumerated() { index[node.name] = position }
        func owner(_ name: String) -> String? {
            switch LayerOwner.of(name, among: index) {
            case .image: "image"
            case .node(let position): graph.nodes[position].name
            case nil: nil
            }
        }
        // The NCHWc rewrite names a Conv after its output tensor; QDQ fusion keeps the Conv's name.
        #expect(owner("stage2.unit0.branch1.pw.conv_nchwc") == "stage2.unit0.branch1.pw")
        #expect(owner("stage2.unit0.branch2.pw1.conv_token_4") == "stage2.unit0.branch2.pw1")
        #expect(owner("stage3.unit0.shuffle.transpose") == "stage3.unit0.shuffle")
        #expect(owner("stage2") == "stage2")
        #expect(owner("stage2_token_7") == "stage2")
        #expect(owner("spp.branch2.dw1.quantize") == "spp.branch2.dw1")
        #expect(owner("head.output.objectness") == "head.output")
        #expect(owner("image.quantize") == "image")
        #expect(owner("ReorderOutput_token_3") == nil)
        #expect(owner("stage22") == nil)
    }

    @Test(arguments: ONNXRuntimeBackend.Precision.allCases)
    func profilesTheDeployedModelLayerByLayer(precision: ONNXRuntimeBackend.Precision) throws {
        let policy = MeasurementPolicy(warmupRuns: 2, minimumRuns: 5, maximumRuns: 20, maximumSeconds: 5, stabilityWindow: 5, stabilityTolerance: 0.05)
        let profiler = ONNXRuntimeLayerProfiler(precision: precision, endToEndPolicy: policy, runs: 10, warmupRuns: 2)
        let profile = try profiler.profile(tinyArchitecture)
        let graph = try DetectorGraph(tinyArchitecture)
        #expect(profile.backend == "onnxruntime-\(precision.rawValue)" && profile.precision == precision.rawValue)
        // INT8 starts with the image's quantization, as libtorch INT8 profiles do.
        #expect(profile.layers.count == graph.nodes.count + (precision == .int8 ? 1 : 0))
        #expect(abs(profile.layers.reduce(0) { $0 + $1.share } - 1) < 1e-9)
        #expect(profile.layerSumMilliseconds > 0 && profile.endToEnd.median > 0)
        // Every convolution runs a kernel of its own (ReLUs and Q/DQ pairs fuse into it).
        let convolutions = profile.layers.filter { $0.operation.contains("conv") }
        #expect(convolutions.filter { $0.medianMilliseconds > 0 }.count >= convolutions.count * 9 / 10)
        #expect(Set(profile.blocks.map(\.block)) == Set(NetworkBlock.allCases))
    }
}
