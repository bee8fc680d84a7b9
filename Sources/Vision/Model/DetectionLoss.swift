import DetectionData
import Foundation
import Torch

/// How the head's four box values become a box, per grid cell (gx, gy) of a W x H grid, in
/// coordinates normalised to [0, 1]:
///
///     centre x = (gx + tanh(tx)) / W      width  = sigmoid(tw)
///     centre y = (gy + tanh(ty)) / H      height = sigmoid(th)
///
/// FastestDet's coding, which its published weights were trained with: cell (gx, gy) is
/// anchored at its top-left grid point, and tanh lets it predict a centre up to one cell away,
/// so the four grid points around an object's centre all predict it (FastestDet's cross-grid
/// candidates). Sigmoid sizes are relative to the image, so one scale of cells covers small
/// and large people.
public enum BoxCoding {
    /// Grid cells responsible for an object: those whose grid point lies less than one cell
    /// from the object's centre in both directions (the 2 x 2 grid points around it, fewer on
    /// a grid line or at the grid's right and bottom edges). `box` is in input pixels, and a
    /// cell covers `cellSize` pixels of a grid of `columns` x `rows`.
    public static func candidateCells(for box: BoundingBox, cellSize: Double, columns: Int, rows: Int) -> [(x: Int, y: Int)] {
        let centreX = (box.x0 + box.x1) / 2 / cellSize, centreY = (box.y0 + box.y1) / 2 / cellSize
        var cells: [(x: Int, y: Int)] = []
        let baseX = Int(centreX.rounded(.down)), baseY = Int(centreY.rounded(.down))
        for y in baseY...(baseY + 1) where y >= 0 && y < rows && abs(centreY - Double(y)) < 1 {
            for x in baseX...(baseX + 1) where x >= 0 && x < columns && abs(centreX - Double(x)) < 1 {
                cells.append((x, y))
            }
        }
        return cells
    }

    /// What a network trained at `trained`'s input size adds to its width and height logits
    /// (tw, th) to run at `input`'s: sizes are fractions of the input, so the same person,
    /// seen r times smaller on an input r times smaller, must come out r times larger as a
    /// fraction; log r per axis makes sigmoid(t) about r sigmoid(t) while the box is small.
    public static func sizeLogitShift(trainedAt trained: DetectorArchitecture, runningAt input: DetectorArchitecture) -> [Float] {
        [Double(trained.inputWidth) / Double(input.inputWidth), Double(trained.inputHeight) / Double(input.inputHeight)]
            .map { Float(Foundation.log($0)) }
    }
}

/// The loss terms of one batch, for logs and for the NaN guard.
public struct DetectionLossTerms: Sendable {
    public var total: Double
    public var box: Double
    public var objectness: Double
    public var classification: Double
    public var positiveCells: Int
}

/// FastestDet-style loss of the single-scale anchor-free head:
/// - box: 1 - GIoU between decoded predictions and the objects, over the candidate cells;
/// - objectness: IoU-aware, binary cross-entropy of every cell against the IoU its box
///   reaches with the object it is responsible for (0 for cells responsible for none), so
///   the objectness score ranks boxes by localisation quality;
/// - class: cross-entropy over the candidate cells.
/// A cell that is a candidate of several objects takes the smallest one.
public struct DetectionLoss: Sendable {
    public var boxWeight: Double
    public var objectnessWeight: Double
    public var classWeight: Double

    public init(boxWeight: Double = 5, objectnessWeight: Double = 1, classWeight: Double = 1) {
        self.boxWeight = boxWeight
        self.objectnessWeight = objectnessWeight
        self.classWeight = classWeight
    }

    /// - Parameters:
    ///   - branches: the head's raw outputs for a batch.
    ///   - targets: per image, its objects with boxes in input pixels (crowd boxes are ignored);
    ///     the input is the grid's size times `DetectorArchitecture.outputStride`.
    /// - Returns: the differentiable total and its terms.
    public func callAsFunction(
        _ branches: DetectorBranches, targets: [[ObjectAnnotation]]
    ) throws -> (loss: Tensor, terms: DetectionLossTerms) {
        let shape = branches.objectness.shape
        let (batch, height, width) = (shape[0], shape[2], shape[3])
        precondition(targets.count == batch, "one target list per image")
        let cellsPerImage = height * width
        let cellSize = Double(DetectorArchitecture.outputStride)
        let (inputWidth, inputHeight) = (Double(width) * cellSize, Double(height) * cellSize)

        // Assign cells: flat index -> (normalised box, class), smallest object first wins.
        var assigned: [Int: (box: BoundingBox, classIndex: Int, area: Double)] = [:]
        for (image, objects) in targets.enumerated() {
            for object in objects where !object.crowd && object.box.area > 0 {
                for cell in BoxCoding.candidateCells(for: object.box, cellSize: cellSize, columns: width, rows: height) {
                    let index = image * cellsPerImage + cell.y * width + cell.x
                    if let existing = assigned[index], existing.area <= object.box.area { continue }
                    let normalised = BoundingBox(x0: object.box.x0 / inputWidth, y0: object.box.y0 / inputHeight,
                                                 x1: object.box.x1 / inputWidth, y1: object.box.y1 / inputHeight)
                    assigned[index] = (normalised, object.classIndex, object.box.area)
                }
            }
        }
        let positives = assigned.keys.sorted()
        let objectnessLogits = try branches.objectness.reshape([batch * cellsPerImage])

        guard !positives.isEmpty else {
            let objectness = try Functional.binaryCrossEntropyWithLogits(objectnessLogits, Tensor.zeros([batch * cellsPerImage]))
            let total = try objectness * objectnessWeight
            let value = try objectness.item()
            return (total, DetectionLossTerms(total: value * objectnessWeight, box: 0, objectness: value, classification: 0, positiveCells: 0))
        }

        let index = try Tensor(positives.map { Int64($0) }, shape: [positives.count])
        let boxValues = try branches.box.permute([0, 2, 3, 1]).reshape([batch * cellsPerImage, 4]).indexSelect(dim: 0, index: index)
        let cellX = try Tensor(positives.map { Float($0 % cellsPerImage % width) }, shape: [positives.count])
        let cellY = try Tensor(positives.map { Float($0 % cellsPerImage / width) }, shape: [positives.count])
        func column(_ tensor: Tensor, _ k: Int) throws -> Tensor { try tensor.narrow(dim: 1, start: k, length: 1).reshape([positives.count]) }
        let centreX = try (cellX + column(boxValues, 0).tanh()) / Double(width)
        let centreY = try (cellY + column(boxValues, 1).tanh()) / Double(height)
        let boxWidth = try column(boxValues, 2).sigmoid(), boxHeight = try column(boxValues, 3).sigmoid()
        let predicted = try (x0: centreX - boxWidth / 2, y0: centreY - boxHeight / 2, x1: centreX + boxWidth / 2, y1: centreY + boxHeight / 2)

        let truth = positives.map { assigned[$0]!.box }
        let truthX0 = try Tensor(truth.map { Float($0.x0) }), truthY0 = try Tensor(truth.map { Float($0.y0) })
        let truthX1 = try Tensor(truth.map { Float($0.x1) }), truthY1 = try Tensor(truth.map { Float($0.y1) })

        // GIoU = IoU - (enclosing area - union) / enclosing area.
        let interWidth = try (predicted.x1.minimum(truthX1) - predicted.x0.maximum(truthX0)).clamp(min: 0)
        let interHeight = try (predicted.y1.minimum(truthY1) - predicted.y0.maximum(truthY0)).clamp(min: 0)
        let intersection = try interWidth * interHeight
        let union = try boxWidth * boxHeight + (truthX1 - truthX0) * (truthY1 - truthY0) - intersection
        let iou = try intersection / (union + 1e-9)
        let enclosing = try (predicted.x1.maximum(truthX1) - predicted.x0.minimum(truthX0))
            * (predicted.y1.maximum(truthY1) - predicted.y0.minimum(truthY0))
        let giou = try iou - (enclosing - union) / (enclosing + 1e-9)
        let boxLoss = try (1.0 - giou).mean()

        // IoU-aware objectness targets (no gradient flows into the target).
        var objectnessTarget = [Float](repeating: 0, count: batch * cellsPerImage)
        for (position, quality) in zip(positives, try iou.detach().floats()) {
            objectnessTarget[position] = max(0, quality)
        }
        let objectnessLoss = try Functional.binaryCrossEntropyWithLogits(
            objectnessLogits, Tensor(objectnessTarget, shape: [batch * cellsPerImage]))

        let classCount = branches.classes.shape[1]
        let classLogits = try branches.classes.permute([0, 2, 3, 1]).reshape([batch * cellsPerImage, classCount])
            .indexSelect(dim: 0, index: index)
        let classTargets = try Tensor(positives.map { Int64(assigned[$0]!.classIndex) }, shape: [positives.count])
        let classLoss = try Functional.crossEntropy(classLogits, classTargets)

        let total = try boxLoss * boxWeight + objectnessLoss * objectnessWeight + classLoss * classWeight
        let terms = DetectionLossTerms(
            total: try total.item(), box: try boxLoss.item(), objectness: try objectnessLoss.item(),
            classification: try classLoss.item(), positiveCells: positives.count)
        return (total, terms)
    }
}
