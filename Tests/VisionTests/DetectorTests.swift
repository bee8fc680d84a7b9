import Foundation
import Testing
import Torch
@testable import Vision

@Test func detectorParametersMatchTheGraphCount() throws {
    for name in ["k5-g1-c96-w320", "k3-g8-c24-w224", "k3-g4-c64-w288-st32.64.128-r2.4.2-nk64-spp1"] {
        let architecture = try DetectorArchitecture(shortName: name)
        let detector = try Detector(architecture)
        let counted = detector.parameters().reduce(0) { $0 + $1.elementCount }
        #expect(counted == detector.graph.parameterCount, "\(name)")
    }
}

@Test func detectorOutputHasTheGraphShapeAndValidScores() throws {
    Torch.manualSeed(1)
    let architecture = try DetectorArchitecture(shortName: "k3-g8-c24-w224-n3")
    let detector = try Detector(architecture)
    detector.eval()
    let image = try Tensor.uniform([2, 3, 224, 224])
    let output = try Torch.withNoGrad { try detector(image) }
    let shape = detector.graph.output.outputShape
    #expect(output.shape == [2, shape.channels, shape.height, shape.width])
    // Objectness is a probability and the class scores of a cell sum to one.
    let objectness = try output.narrow(dim: 1, start: 0, length: 1).floats()
    #expect(objectness.allSatisfy { $0 > 0 && $0 < 1 })
    let classSums = try output.narrow(dim: 1, start: 5, length: 3).sum(dims: [1]).floats()
    #expect(classSums.allSatisfy { abs($0 - 1) < 1e-5 })
}

@Test func branchesFeedTheSameOutput() throws {
    Torch.manualSeed(2)
    let detector = try Detector(try DetectorArchitecture(shortName: "k5-g2-c48-w224"))
    detector.eval()
    let image = try Tensor.uniform([1, 3, 224, 224])
    let (output, branches) = try Torch.withNoGrad { (try detector(image), try detector.branches(image)) }
    let objectness = try branches.objectness.sigmoid().floats()
    let fromOutput = try output.narrow(dim: 1, start: 0, length: 1).floats()
    #expect(zip(objectness, fromOutput).allSatisfy { abs($0 - $1) < 1e-6 })
}

/// Training runs channels-last (`Trainer` calls `useChannelsLast()`); it must compute what the
/// NCHW network computes, forward and backward, and save weights that an NCHW network loads.
/// Compared in float64: in float32 the two layouts sum in different orders, and the gradients
/// of a random network through training-mode batch norm differ by several per cent between
/// them (as between float32 and float64), in PyTorch too, which would hide a layout bug.
@Test func channelsLastComputesWhatNCHWComputes() throws {
    Torch.manualSeed(3)
    // Grouped head, cut stages and a split/shuffle backbone: every node kind of the graph.
    let architecture = try DetectorArchitecture(shortName: "k3-g2-c48-w224-st32.64.128-r2.4.2-nk64-spp1")
    let reference = try Detector(architecture)
    let channelsLast = try Detector(architecture)
    try channelsLast.load(TensorArchive(entries: reference.namedState()))
    try channelsLast.useChannelsLast()
    #expect(!reference.runsChannelsLast && channelsLast.runsChannelsLast)
    let image = try Tensor.uniform([2, 3, 224, 224]).to(.float64)

    func outputAndGradients(_ detector: Detector) throws -> (output: Tensor, gradients: [Tensor]) {
        try detector.zeroGrad()
        let output = try detector(image)
        try (output * output).sum().backward()
        return (try output.detach(), detector.parameters().map { $0.grad! })
    }
    func relativeDifference(_ a: Tensor, _ b: Tensor) throws -> Double {
        try (a - b).abs().max().item() / Swift.max(a.abs().max().item(), 1e-6)
    }
    try reference.convertFloatingPoint(to: .float64)
    try channelsLast.convertFloatingPoint(to: .float64)
    let expected = try outputAndGradients(reference)
    let found = try outputAndGradients(channelsLast)
    #expect(try relativeDifference(expected.output, found.output) < 1e-9)
    for (index, (a, b)) in zip(expected.gradients, found.gradients).enumerated() {
        // float64 rounding leaves up to about 1e-6 here; a channel put in the wrong place gives O(1).
        let difference = try relativeDifference(a, b)
        #expect(difference < 1e-5, "gradient \(index): \(difference)")
    }

    // Saved weights are NCHW-ordered values whatever the layout in memory.
    try channelsLast.convertFloatingPoint(to: .float32)
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("channels-last-\(UUID().uuidString).tensors")
    defer { try? FileManager.default.removeItem(at: file) }
    try channelsLast.save(to: file)
    let reloaded = try Detector(architecture)
    try reloaded.load(from: file)
    reloaded.eval()
    channelsLast.eval()
    let floatImage = try image.to(.float32)
    let (a, b) = try Torch.withNoGrad { (try reloaded(floatImage), try channelsLast(floatImage)) }
    #expect(!reloaded.runsChannelsLast && channelsLast.runsChannelsLast)
    #expect(try relativeDifference(a, b) < 1e-4)
}

/// `outputs` keeps every node's value, and `apply` on a node's cached inputs gives back that
/// value: the per-layer profile and INT8 calibration see exactly what `forward` runs.
@Test func nodeByNodeIsTheForwardPass() throws {
    Torch.manualSeed(4)
    let detector = try Detector(try DetectorArchitecture(shortName: "k3-g2-c48-w224"))
    detector.eval()
    let image = try Tensor.uniform([1, 3, 224, 224])
    try Torch.withNoGrad {
        let outputs = try detector.outputs(image)
        #expect(outputs.count == detector.graph.nodes.count + 1)
        for node in detector.graph.nodes {
            let again = try detector.apply(node, node.inputs.map { outputs[$0]! })
            #expect(try (again - outputs[node.name]!).abs().max().item() == 0, "\(node.name)")
        }
        let last = try #require(detector.graph.nodes.last)
        #expect(try (outputs[last.name]! - detector(image)).abs().max().item() == 0)
    }
}
