import Foundation
import Testing
@testable import Vision

/// Counts made by scripts/reference/fastestdet_counts.py in PyTorch (hooks on the convolutions
/// actually run), for architectures named by their short names.
private struct ReferenceCounts: Decodable {
    let params: Int
    let macs: Int
    let output_shape: [Int]
}

private func referenceCounts() throws -> [String: ReferenceCounts] {
    let url = try #require(Bundle.module.url(forResource: "fastestdet_counts", withExtension: "json", subdirectory: "Fixtures"))
    return try JSONDecoder().decode([String: ReferenceCounts].self, from: Data(contentsOf: url))
}

@Test func graphCountsMatchPyTorchReference() throws {
    let references = try referenceCounts()
    #expect(references.count == 5)
    for (name, reference) in references {
        let architecture = try DetectorArchitecture(shortName: name)
        let graph = try DetectorGraph(architecture)
        #expect(graph.parameterCount == reference.params, "params of \(name)")
        #expect(graph.multiplyAccumulates == reference.macs, "MACs of \(name)")
        let shape = graph.output.outputShape
        #expect([1, shape.channels, shape.height, shape.width] == reference.output_shape, "output of \(name)")
    }
}

@Test func baselineIsFastestDetOneClass320() throws {
    let graph = try DetectorGraph(.baseline)
    #expect(DetectorArchitecture.baseline.description == "k5-g1-c96-w320")
    #expect(graph.parameterCount == 236_748)
    #expect(graph.output.outputShape == FeatureShape(channels: 6, height: 20, width: 20))
}

@Test func everyWidthOfTheSearchSpaceBuildsOnTheStrideGrid() throws {
    for width in 220...320 {
        let architecture = DetectorArchitecture(inputWidthPixels: width)
        let graph = try DetectorGraph(architecture)
        #expect(architecture.inputWidth % DetectorArchitecture.backboneStride == 0)
        #expect(abs(architecture.inputWidth - width) <= 16)
        #expect(graph.output.outputShape.height == architecture.inputWidth / 16)
        // The neck concatenates stride 8, 16 and 32 features: all three must meet at stride 16.
        let concat = try #require(graph.node(named: "neck.concat"))
        #expect(concat.outputShape.height == architecture.inputWidth / 16)
    }
    #expect(DetectorArchitecture(inputWidthPixels: 220).inputWidth == 224)
    #expect(DetectorArchitecture(inputWidthPixels: 240).inputWidth == 256)
}

@Test func shortNameRoundTrips() throws {
    let architecture = DetectorArchitecture(
        headKernelSize: 3, headGroups: 4, headChannels: 64, inputWidthPixels: 288, classCount: 2, stemChannels: 16,
        stageChannels: [32, 64, 128], stageRepeats: [2, 4, 2], neckChannels: 64, sppBranches: 1)
    #expect(try DetectorArchitecture(shortName: architecture.description) == architecture)
    #expect(try DetectorArchitecture(shortName: "k3") == DetectorArchitecture(headKernelSize: 3))
}

@Test func invalidArchitecturesNameTheField() {
    #expect(throws: ArchitectureError.invalidField("headChannels", value: "30", expected: "a positive multiple of headGroups (8)")) {
        try DetectorGraph(DetectorArchitecture(headGroups: 8, headChannels: 30))
    }
    #expect(throws: ArchitectureError.unparsableName("k5-x9", part: "x9")) { try DetectorArchitecture(shortName: "k5-x9") }
    #expect(throws: ArchitectureError.self) { try DetectorArchitecture(shortName: "k4") }
}

@Test func peakActivationMemoryIsAtLeastTheLargestTensor() throws {
    let graph = try DetectorGraph(.baseline)
    let largest = graph.nodes.map(\.outputShape.elementCount).max()!
    #expect(graph.peakActivationElements >= largest)
    // The stem output (24 x 160 x 160) and the image are alive together when the stem runs.
    #expect(graph.peakActivationElements >= 24 * 160 * 160 + 3 * 320 * 320)
}

/// A landscape input: its own height on the stride grid, a rectangular output grid, a name part
/// of its own, and square architectures written exactly as before.
@Test func aLandscapeInputHasItsOwnHeight() throws {
    let landscape = try DetectorArchitecture(shortName: "k5-g1-c96-w288-h224")
    #expect((landscape.inputWidth, landscape.inputHeight) == (288, 224))
    #expect((landscape.gridWidth, landscape.gridHeight) == (18, 14))
    #expect(landscape.description == "k5-g1-c96-w288-h224")
    #expect(try DetectorGraph(landscape).output.outputShape == FeatureShape(channels: 6, height: 14, width: 18))
    #expect(landscape.inputShape(batch: 2) == [2, 3, 224, 288])
    // A height equal to the width is the square network, under its one name.
    #expect(try DetectorArchitecture(shortName: "k5-g1-c96-w320-h320") == .baseline)
    // A height between stride points rounds as the width does.
    #expect(DetectorArchitecture(inputWidthPixels: 320, inputHeightPixels: 240).inputHeight == 256)
    #expect(throws: ArchitectureError.invalidField("inputHeightPixels", value: "16", expected: "32...1024")) {
        try DetectorArchitecture(inputHeightPixels: 16).validate()
    }

    // Another width keeps the aspect ratio; a square stays square.
    let narrower = DetectorArchitecture(inputWidthPixels: 320, inputHeightPixels: 240).atInputWidth(256)
    #expect((narrower.inputWidthPixels, narrower.inputHeightPixels) == (256, 192))
    #expect(DetectorArchitecture.baseline.atInputWidth(224).inputHeightPixels == nil)

    // Files written before non-square inputs (no height) still read, and a square one is
    // written without a height.
    let square = try JSONEncoder().encode(DetectorArchitecture.baseline)
    #expect(!String(decoding: square, as: UTF8.self).contains("inputHeightPixels"))
    #expect(try JSONDecoder().decode(DetectorArchitecture.self, from: square) == .baseline)
    #expect(try JSONDecoder().decode(DetectorArchitecture.self, from: JSONEncoder().encode(landscape)) == landscape)
}
