import DetectionData
import Foundation
import Testing
import Torch
import Vision
@testable import ZeroCostProxies

/// The fixture's network: conv3x3(3->4)+BN+ReLU, conv3x3 stride 2 (4->6)+BN+ReLU, global average
/// pool, linear(6->3), cross-entropy loss; same layout and names as make_proxy_fixture.py's `Tiny`.
final class TinyNetwork: Module, ProxyNetwork {
    typealias Targets = Tensor
    let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d, fc: Linear
    var isTraining = true
    /// Forward passes through `loss` and `output`, counted for the shared-pass test.
    var lossPasses = 0, outputPasses = 0

    init() throws {
        conv1 = try Conv2d(inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, bias: false)
        bn1 = try BatchNorm2d(features: 4)
        conv2 = try Conv2d(inChannels: 4, outChannels: 6, kernelSize: 3, stride: 2, padding: 1, bias: false)
        bn2 = try BatchNorm2d(features: 6)
        fc = try Linear(inFeatures: 6, outFeatures: 3)
    }

    var children: [(name: String, module: any Module)] {
        [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2), ("fc", fc)]
    }

    func forward(_ input: Tensor) throws -> Tensor { try output(input, observer: nil) }

    var module: any Module { self }
    var weightedLayerWeights: [Tensor] { [conv1.weight.tensor, conv2.weight.tensor, fc.weight.tensor] }
    var multiplyAccumulates: Int { 4 * 8 * 8 * 3 * 9 + 6 * 4 * 4 * 4 * 9 + 6 * 3 }

    func output(_ input: Tensor, observer: ActivationObserver?) throws -> Tensor {
        outputPasses += 1
        return try logits(input, observer: observer)
    }

    private func logits(_ input: Tensor, observer: ActivationObserver?) throws -> Tensor {
        let a = try conv1(input)
        try observer?("conv1", .weightedLayer, a)
        let ra = try bn1(a).relu()
        try observer?("bn1", .relu, ra)
        let b = try conv2(ra)
        try observer?("conv2", .weightedLayer, b)
        let rb = try bn2(b).relu()
        try observer?("bn2", .relu, rb)
        let logits = try fc(rb.mean(dims: [2, 3]))
        try observer?("fc", .weightedLayer, logits)
        return logits
    }

    func features(_ input: Tensor) throws -> Tensor { try bn2(conv2(bn1(conv1(input)).relu())).relu() }

    func loss(_ input: Tensor, targets: Tensor, observer: ActivationObserver?) throws -> Tensor {
        lossPasses += 1
        return try Functional.crossEntropy(logits(input, observer: observer), targets)
    }
}

struct ProxyFixture: Decodable {
    struct Values: Decodable { var shape: [Int]; var values: [Double] }
    var state: [String: Values]
    var input: Values
    var labels: [Int]
    var zen_seed: UInt64
    var zen_mixup_scale: Double
    var proxies: [String: Double]

    static func load() throws -> ProxyFixture {
        let url = try #require(Bundle.module.url(forResource: "proxies_tiny", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(ProxyFixture.self, from: Data(contentsOf: url))
    }
}

@Suite struct ZeroCostProxyTests {
    func makeTiny(_ fixture: ProxyFixture) throws -> (TinyNetwork, ProxyBatch<Tensor>) {
        let network = try TinyNetwork()
        try network.convertFloatingPoint(to: .float64)
        for (name, tensor) in network.namedState() where tensor.dtype.isFloatingPoint {
            let stored = try #require(fixture.state[name], "fixture lacks \(name)")
            try tensor.assign(Tensor(stored.values, shape: stored.shape))
        }
        let batch = ProxyBatch(inputs: try Tensor(fixture.input.values, shape: fixture.input.shape),
                               targets: try Tensor(fixture.labels.map(Int64.init)), groups: fixture.labels)
        return (network, batch)
    }

    @Test(arguments: ZeroCostProxy.allCases)
    func matchesPythonTorchReference(_ proxy: ZeroCostProxy) throws {
        let fixture = try ProxyFixture.load()
        let (network, batch) = try makeTiny(fixture)
        let evaluator = ZeroCostProxyEvaluator(seed: fixture.zen_seed, zenMixupScale: fixture.zen_mixup_scale)
        let expected = try #require(fixture.proxies[proxy.rawValue])
        let value = try evaluator.score(proxy, network: network, batch: batch)
        #expect(abs(value - expected) <= 1e-9 * max(1, abs(expected)), "\(proxy.rawValue): \(value) vs python \(expected)")
    }

    @Test func scoresDoNotDependOnOrderAndRestoreTheNetwork() throws {
        let fixture = try ProxyFixture.load()
        let (network, batch) = try makeTiny(fixture)
        let before = try network.namedState().map { try $0.tensor.toArray(of: Double.self) }
        let evaluator = ZeroCostProxyEvaluator(seed: fixture.zen_seed, zenMixupScale: fixture.zen_mixup_scale)
        let forward = try evaluator.scores(network: network, batch: batch)
        let backward = try evaluator.scores(ZeroCostProxy.allCases.reversed(), network: network, batch: batch)
        for score in forward {
            let other = try #require(backward.first { $0.proxy == score.proxy })
            #expect(score.score == other.score, "\(score.proxy.rawValue)")
        }
        let after = try network.namedState().map { try $0.tensor.toArray(of: Double.self) }
        #expect(before == after)
        #expect(network.isTraining)
    }

    /// One loss gradient serves grad_norm, snip, plain and fisher, one input Jacobian jacov and
    /// epe_nas; each proxy scores what it scores alone.
    @Test func proxiesReadingTheSamePassShareIt() throws {
        let fixture = try ProxyFixture.load()
        let (network, batch) = try makeTiny(fixture)
        let evaluator = ZeroCostProxyEvaluator(seed: fixture.zen_seed, zenMixupScale: fixture.zen_mixup_scale)
        let lossGradientProxies: [ZeroCostProxy] = [.gradNorm, .snip, .plain, .fisher]
        let together = try evaluator.scores(lossGradientProxies + [.jacov, .epeNAS], network: network, batch: batch)
        #expect(network.lossPasses == 1)
        #expect(network.outputPasses == 1)
        for score in together {
            let alone = try evaluator.score(score.proxy, network: network, batch: batch)
            #expect(abs(score.score - alone) <= 1e-12 * max(1, abs(alone)), "\(score.proxy.rawValue): \(score.score) vs \(alone)")
        }
    }

    @Test func rejectsMismatchedGroups() throws {
        let fixture = try ProxyFixture.load()
        let (network, batch) = try makeTiny(fixture)
        var short = batch
        short.groups = [0]
        #expect(throws: ZeroCostProxyError.groupCountMismatch(groups: 1, samples: 6)) {
            try ZeroCostProxyEvaluator().score(.epeNAS, network: network, batch: short)
        }
    }

    @Test func everyProxyIsFiniteOnASmallDetector() throws {
        Torch.manualSeed(3)
        let architecture = DetectorArchitecture(headKernelSize: 3, headGroups: 2, headChannels: 16, inputWidthPixels: 64,
                                                stemChannels: 8, stageChannels: [8, 16, 32], stageRepeats: [1, 1, 1],
                                                neckChannels: 16, sppBranches: 1)
        let network = DetectorProxyNetwork(detector: try Detector(architecture))
        let images = try Tensor.uniform([4, 3, 64, 64], generator: Generator(seed: 1))
        let person = ObjectAnnotation(box: BoundingBox(x0: 10, y0: 12, x1: 30, y1: 50), classIndex: 0)
        let other = ObjectAnnotation(box: BoundingBox(x0: 40, y0: 5, x1: 60, y1: 40), classIndex: 0)
        let targets = [[person], [person, other], [], [person]]
        let batch = ProxyBatch(inputs: images, targets: targets, groups: DetectorProxyNetwork.objectCountGroups(targets))
        #expect(batch.groups == [1, 2, 0, 1])
        let scores = try ZeroCostProxyEvaluator().scores(network: network, batch: batch)
        #expect(scores.count == ZeroCostProxy.allCases.count)
        for s in scores { #expect(s.score.isFinite, "\(s.proxy.rawValue) = \(s.score)") }
        let params = try #require(scores.first { $0.proxy == .params })
        #expect(Int(params.score) == network.detector.graph.parameterCount)
        // Synflow converted the detector to float64 and back.
        #expect(network.detector.parameters().allSatisfy { $0.dtype == .float32 })
    }
}
