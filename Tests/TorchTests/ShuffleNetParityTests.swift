import Foundation
import Testing
import Torch
import Vision

/// Parity with PyTorch: fixture made by scripts/torch_reference.py (see its header for contents).
private struct FlatTensor: Decodable {
    let shape: [Int]
    let values: [Double]

    func tensor() throws -> Tensor {
        // num_batches_tracked is the only integer entry; every other tensor is float32.
        try Tensor(values.map { Float($0) }, shape: shape)
    }
}

private struct ParityCase: Decodable {
    let inputChannels: Int
    let outputChannels: Int
    let stride: Int
    let input: FlatTensor
    let lossWeights: FlatTensor
    let initialState: [String: FlatTensor]
    let evalOutput: FlatTensor
    let trainOutput: FlatTensor
    let loss: Double
    let gradients: [String: FlatTensor]
    let stateAfterForward: [String: FlatTensor]
    let parametersAfterSgd: [String: FlatTensor]
    let parametersAfterAdamw: [String: FlatTensor]

    enum CodingKeys: String, CodingKey {
        case inputChannels = "input_channels", outputChannels = "output_channels", stride, input
        case lossWeights = "loss_weights", initialState = "initial_state", evalOutput = "eval_output"
        case trainOutput = "train_output", loss, gradients, stateAfterForward = "state_after_forward"
        case parametersAfterSgd = "parameters_after_sgd", parametersAfterAdamw = "parameters_after_adamw"
    }

    /// A unit holding the fixture's initial weights and running statistics.
    func makeUnit() throws -> ShuffleNetV2Unit {
        let unit = try ShuffleNetV2Unit(
            inputChannels: inputChannels, outputChannels: outputChannels, stride: stride, generator: Generator(seed: 0))
        let entries = try initialState.map { name, flat in
            (name: name, tensor: name.hasSuffix("num_batches_tracked") ? try flat.tensor().to(.int64) : try flat.tensor())
        }
        try unit.load(TensorArchive(entries: entries))
        return unit
    }
}

private struct Fixture: Decodable {
    let cases: [ParityCase]

    static func load() throws -> Fixture {
        let url = try #require(Bundle.module.url(forResource: "shufflenet_unit_parity", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }
}

/// Largest |actual − expected| / max(1, |expected|): absolute for values up to 1, relative above
/// (gradients of a summed loss reach tens, where float32 resolution itself is ~1e-6).
private func maxError(_ actual: Tensor, _ expected: FlatTensor) throws -> Double {
    #expect(actual.shape == expected.shape)
    let values = try actual.toArray(of: Double.self)
    return zip(values, expected.values).map { Swift.abs($0 - $1) / Swift.max(1, Swift.abs($1)) }.max() ?? 0
}

private func expectClose(_ actual: Tensor, _ expected: FlatTensor, _ what: String, tolerance: Double = 1e-5) throws {
    let error = try maxError(actual, expected)
    #expect(error <= tolerance, "\(what): max error \(error)")
}

@Suite struct ShuffleNetParityTests {
    static let strides = [1, 2]

    private func parityCase(stride: Int) throws -> ParityCase {
        try #require(try Fixture.load().cases.first { $0.stride == stride })
    }

    @Test(arguments: strides) func forwardAndGradientsMatchPyTorch(stride: Int) throws {
        let reference = try parityCase(stride: stride)
        let unit = try reference.makeUnit()
        let input = try reference.input.tensor()

        unit.eval()
        try expectClose(try Torch.withNoGrad { try unit(input) }, reference.evalOutput, "eval output")

        unit.train()
        let output = try unit(input)
        try expectClose(output, reference.trainOutput, "train output")
        let loss = try (output * reference.lossWeights.tensor()).sum()
        #expect(Swift.abs(try loss.item() - reference.loss) <= 1e-5 * Swift.max(1, Swift.abs(reference.loss)))
        try loss.backward()

        let parameters = unit.namedParameters()
        #expect(Set(parameters.map(\.name)) == Set(reference.gradients.keys))
        for (name, parameter) in parameters {
            let grad = try #require(parameter.grad, "no gradient for \(name)")
            try expectClose(grad, try #require(reference.gradients[name]), "gradient of \(name)")
        }
        for (name, tensor) in unit.namedBuffers() {
            try expectClose(tensor, try #require(reference.stateAfterForward[name]), "buffer \(name)")
        }
    }

    @Test(arguments: strides) func sgdWithNesterovMomentumMatchesPyTorch(stride: Int) throws {
        let reference = try parityCase(stride: stride)
        let unit = try reference.makeUnit()
        let optimizer = try SGD(parameters: unit.parameters(), learningRate: 0.1, momentum: 0.9, weightDecay: 1e-4, nesterov: true)
        try train(unit, reference, training: true, steps: 2, zeroGrad: optimizer.zeroGrad, step: optimizer.step)
        for (name, parameter) in unit.namedParameters() {
            try expectClose(parameter, try #require(reference.parametersAfterSgd[name]), "SGD \(name)")
        }
    }

    @Test(arguments: strides) func adamWMatchesPyTorch(stride: Int) throws {
        let reference = try parityCase(stride: stride)
        let unit = try reference.makeUnit()
        let optimizer = try AdamW(parameters: unit.parameters(), learningRate: 0.01, weightDecay: 0.05)
        // Evaluation-mode batch norm, as in the reference (see scripts/torch_reference.py for why).
        try train(unit, reference, training: false, steps: 2, zeroGrad: optimizer.zeroGrad, step: optimizer.step)
        for (name, parameter) in unit.namedParameters() {
            try expectClose(parameter, try #require(reference.parametersAfterAdamw[name]), "AdamW \(name)")
        }
    }

    private func train(_ unit: ShuffleNetV2Unit, _ reference: ParityCase, training: Bool, steps: Int,
                       zeroGrad: () throws -> Void, step: () throws -> Void) throws {
        unit.train(training)
        let input = try reference.input.tensor()
        let weights = try reference.lossWeights.tensor()
        for _ in 0..<steps {
            try zeroGrad()
            try (unit(input) * weights).sum().backward()
            try step()
        }
    }
}

@Suite struct ShuffleNetBackboneTests {
    @Test func backboneReturnsStride8To32FeatureMaps() throws {
        let generator = try Generator(seed: 0)
        let backbone = try ShuffleNetV2Backbone(generator: generator)
        let features = try backbone.features(Tensor.normal([2, 3, 64, 96], generator: generator))
        #expect(features.stride8.shape == [2, 48, 8, 12])
        #expect(features.stride16.shape == [2, 96, 4, 6])
        #expect(features.stride32.shape == [2, 192, 2, 3])
        // torchvision's shufflenet_v2_x0_5 has 1,366,792 parameters; without conv5 + its BN
        // (196,608 + 2,048) and fc (1,025,000) that leaves 143,136.
        #expect(backbone.parameters().map(\.elementCount).reduce(0, +) == 143_136)
        #expect(backbone.namedParameters().first?.name == "conv1.0.weight")
        #expect(backbone.namedParameters().contains { $0.name == "stage4.3.branch2.7.weight" } == false)
        #expect(backbone.namedParameters().contains { $0.name == "stage3.0.branch1.0.weight" })
    }

    @Test func channelShuffleInterleavesHalves() throws {
        let input = try Tensor.arange(0, 4).reshape([1, 4, 1, 1])
        #expect(try channelShuffle(input, groups: 2).floats() == [0, 2, 1, 3])
    }

    @Test func invalidUnitConfigurationThrows() {
        #expect(throws: TorchError.self) { try ShuffleNetV2Unit(inputChannels: 16, outputChannels: 32, stride: 1) }
        #expect(throws: TorchError.self) { try ShuffleNetV2Unit(inputChannels: 16, outputChannels: 15, stride: 2) }
    }
}

@Suite struct ModuleStateTests {
    @Test func saveAndLoadRoundTrip() throws {
        let generator = try Generator(seed: 1)
        let original = try ShuffleNetV2Unit(inputChannels: 8, outputChannels: 16, stride: 2, generator: generator)
        _ = try original(Tensor.normal([2, 8, 8, 8], generator: generator))  // moves the running statistics off their defaults
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-state-\(UUID().uuidString).edgt")
        defer { try? FileManager.default.removeItem(at: url) }
        try original.save(to: url)

        let restored = try ShuffleNetV2Unit(inputChannels: 8, outputChannels: 16, stride: 2, generator: Generator(seed: 2))
        try restored.load(from: url)
        for (saved, loaded) in zip(original.namedState(), restored.namedState()) {
            #expect(saved.name == loaded.name)
            #expect(saved.tensor.dtype == loaded.tensor.dtype)
            #expect(try saved.tensor.toArray(of: Double.self) == loaded.tensor.toArray(of: Double.self))
        }
        #expect(try restored.batchNormCounter() == 1)

        let mismatched = try ShuffleNetV2Unit(inputChannels: 8, outputChannels: 32, stride: 2, generator: generator)
        #expect(throws: ModuleStateError.self) { try mismatched.load(from: url) }
    }

    @Test func truncatedArchiveIsReported() throws {
        let data = try TensorArchive(entries: [("x", Tensor.ones([3]))]).encoded()
        #expect(throws: TensorArchiveError.self) { try TensorArchive(decoding: data.prefix(data.count - 1)) }
    }
}

private extension ShuffleNetV2Unit {
    func batchNormCounter() throws -> Double {
        try #require(namedBuffers().first { $0.name.hasSuffix("num_batches_tracked") }).tensor.item()
    }
}
