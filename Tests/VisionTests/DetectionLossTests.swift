import DetectionData
import Testing
import Torch
@testable import Vision

@Test func candidateCellsSurroundTheObjectCentre() {
    // 224 px input, 14 x 14 grid of 16 px cells. Centre (40, 40) is (2.5, 2.5) in cells: the
    // four grid points around it, as FastestDet assigns them.
    let centred = BoxCoding.candidateCells(for: BoundingBox(x0: 30, y0: 30, x1: 50, y1: 50), inputSize: 224, gridSize: 14)
    #expect(centred.map { [$0.x, $0.y] } == [[2, 2], [3, 2], [2, 3], [3, 3]])
    // Centre (48, 40) is (3.0, 2.5): on a vertical grid line, so only the points on that line.
    let onLine = BoxCoding.candidateCells(for: BoundingBox(x0: 38, y0: 30, x1: 58, y1: 50), inputSize: 224, gridSize: 14)
    #expect(onLine.map { [$0.x, $0.y] } == [[3, 2], [3, 3]])
    // Near the right edge (13.75 cells) there is no grid point 14: one column only.
    let right = BoxCoding.candidateCells(for: BoundingBox(x0: 214, y0: 30, x1: 226, y1: 50), inputSize: 224, gridSize: 14)
    #expect(right.map { [$0.x, $0.y] } == [[13, 2], [13, 3]])
    // A corner object keeps its cells inside the grid.
    let corner = BoundingBox(x0: 0, y0: 0, x1: 6, y1: 6)
    #expect(BoxCoding.candidateCells(for: corner, inputSize: 224, gridSize: 14).allSatisfy { $0.x >= 0 && $0.y >= 0 })
}

@Test func lossFallsWhenFittingOneBatch() throws {
    Torch.manualSeed(3)
    let detector = try Detector(try DetectorArchitecture(shortName: "k3-g8-c24-w224"))
    let image = try Tensor.uniform([2, 3, 224, 224])
    let targets = [
        [ObjectAnnotation(box: BoundingBox(x0: 40, y0: 60, x1: 100, y1: 180), classIndex: 0)],
        [ObjectAnnotation(box: BoundingBox(x0: 120, y0: 20, x1: 200, y1: 140), classIndex: 0),
         ObjectAnnotation(box: BoundingBox(x0: 10, y0: 150, x1: 60, y1: 220), classIndex: 0)],
    ]
    let loss = DetectionLoss()
    let optimizer = try AdamW(parameters: detector.parameters(), learningRate: 0.01)
    var first: DetectionLossTerms?
    var last: DetectionLossTerms?
    for _ in 0..<40 {
        try optimizer.zeroGrad()
        let (total, terms) = try loss(detector.branches(image), targets: targets, inputSize: 224)
        try total.backward()
        try optimizer.step()
        first = first ?? terms
        last = terms
    }
    let start = try #require(first), end = try #require(last)
    #expect(start.positiveCells > 3)
    #expect(end.total < 0.5 * start.total, "loss \(start.total) -> \(end.total)")
    #expect(end.box < start.box)
}

@Test func emptyImagesOnlyTrainObjectness() throws {
    Torch.manualSeed(4)
    let detector = try Detector(try DetectorArchitecture(shortName: "k3-g8-c24-w224"))
    let (total, terms) = try DetectionLoss()(detector.branches(try Tensor.uniform([1, 3, 224, 224])), targets: [[]], inputSize: 224)
    #expect(terms.positiveCells == 0 && terms.box == 0 && terms.classification == 0)
    #expect(terms.objectness > 0)
    try total.backward()
}
