import DetectionData
import Testing
import Torch
@testable import Vision

@Test func candidateCellsSurroundTheObjectCentre() {
    // 224 px input, 14 x 14 grid of 16 px cells. Centre (40, 40) is (2.5, 2.5) in cells: the
    // four grid points around it, as FastestDet assigns them.
    let centred = BoxCoding.candidateCells(for: BoundingBox(x0: 30, y0: 30, x1: 50, y1: 50), cellSize: 16, columns: 14, rows: 14)
    #expect(centred.map { [$0.x, $0.y] } == [[2, 2], [3, 2], [2, 3], [3, 3]])
    // Centre (48, 40) is (3.0, 2.5): on a vertical grid line, so only the points on that line.
    let onLine = BoxCoding.candidateCells(for: BoundingBox(x0: 38, y0: 30, x1: 58, y1: 50), cellSize: 16, columns: 14, rows: 14)
    #expect(onLine.map { [$0.x, $0.y] } == [[3, 2], [3, 3]])
    // Near the right edge (13.75 cells) there is no grid point 14: one column only.
    let right = BoxCoding.candidateCells(for: BoundingBox(x0: 214, y0: 30, x1: 226, y1: 50), cellSize: 16, columns: 14, rows: 14)
    #expect(right.map { [$0.x, $0.y] } == [[13, 2], [13, 3]])
    // A corner object keeps its cells inside the grid.
    let corner = BoundingBox(x0: 0, y0: 0, x1: 6, y1: 6)
    #expect(BoxCoding.candidateCells(for: corner, cellSize: 16, columns: 14, rows: 14).allSatisfy { $0.x >= 0 && $0.y >= 0 })
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
        let (total, terms) = try loss(detector.branches(image), targets: targets)
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
    let (total, terms) = try DetectionLoss()(detector.branches(try Tensor.uniform([1, 3, 224, 224])), targets: [[]])
    #expect(terms.positiveCells == 0 && terms.box == 0 && terms.classification == 0)
    #expect(terms.objectness > 0)
    try total.backward()
}

@Test func candidateCellsOfALandscapeGridUseItsColumnsAndRows() {
    // 288 x 224 input: 18 columns, 14 rows. Centre (280, 216) is (17.5, 13.5) in cells: beyond
    // the last grid point in both directions, so one cell; a square 14 x 14 grid would have
    // no column 17 at all.
    let cells = BoxCoding.candidateCells(for: BoundingBox(x0: 272, y0: 208, x1: 288, y1: 224), cellSize: 16, columns: 18, rows: 14)
    #expect(cells.map { [$0.x, $0.y] } == [[17, 13]])
}

/// The loss and the decoding agree on a landscape grid: a network fitted to one batch finds
/// its objects where they are, each axis normalised by its own side.
@Test func aLandscapeDetectorFitsItsObjectsWhereTheyAre() throws {
    Torch.manualSeed(5)
    let architecture = try DetectorArchitecture(shortName: "k3-g8-c24-w192-h128")
    let detector = try Detector(architecture)
    let image = try Tensor.uniform(architecture.inputShape(batch: 1))
    let person = BoundingBox(x0: 120, y0: 20, x1: 176, y1: 116)  // tall, in the right half
    let targets = [[ObjectAnnotation(box: person, classIndex: 0)]]
    let optimizer = try AdamW(parameters: detector.parameters(), learningRate: 0.01)
    for _ in 0..<60 {
        try optimizer.zeroGrad()
        try DetectionLoss()(detector.branches(image), targets: targets).loss.backward()
        try optimizer.step()
    }
    detector.eval()
    let output = try Torch.withNoGrad { try detector(image).floats() }
    let best = try #require(DetectorEvaluation.decode(
        output: output[...], classCount: 1, columns: architecture.gridWidth, rows: architecture.gridHeight,
        inputWidth: architecture.inputWidth, inputHeight: architecture.inputHeight).first)
    #expect(best.box.iou(with: person) > 0.6, "best box \(best.box) against \(person)")
}
