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
