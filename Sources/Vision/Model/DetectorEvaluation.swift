import DetectionData
import Foundation
import Torch

/// Turns the detector's output into scored boxes and measures AP on a dataset.
public enum DetectorEvaluation {
    /// Detections of one image from its output [1 + 4 + classes, rows, columns] (flattened,
    /// channel major), in the pixels of an input of `inputWidth` x `inputHeight`. Score = objectness^0.6 x class probability^0.4, as
    /// FastestDet's post-processing; cells below `scoreThreshold` are dropped before NMS.
    public static func decode(
        output: ArraySlice<Float>, classCount: Int, columns: Int, rows: Int, inputWidth: Int, inputHeight: Int,
        scoreThreshold: Double = 0.001, nmsIoU: Double = 0.45, maxDetections: Int = 100
    ) -> [Detection] {
        let cells = columns * rows
        let base = output.startIndex
        func value(_ channel: Int, _ cell: Int) -> Double { Double(output[base + channel * cells + cell]) }
        var detections: [Detection] = []
        for cell in 0..<cells {
            let objectness = value(0, cell)
            var bestClass = 0, bestProbability = -1.0
            for classIndex in 0..<classCount where value(5 + classIndex, cell) > bestProbability {
                bestClass = classIndex
                bestProbability = value(5 + classIndex, cell)
            }
            let score = pow(max(0, objectness), 0.6) * pow(max(0, bestProbability), 0.4)
            guard score >= scoreThreshold else { continue }
            let x = Double(cell % columns), y = Double(cell / columns)
            let centreX = (x + tanh(value(1, cell))) / Double(columns)
            let centreY = (y + tanh(value(2, cell))) / Double(rows)
            let width = 1 / (1 + exp(-value(3, cell))), height = 1 / (1 + exp(-value(4, cell)))
            let (scaleX, scaleY) = (Double(inputWidth), Double(inputHeight))
            let box = BoundingBox(x0: (centreX - width / 2) * scaleX, y0: (centreY - height / 2) * scaleY,
                                  x1: (centreX + width / 2) * scaleX, y1: (centreY + height / 2) * scaleY)
            detections.append(Detection(box: box.clipped(width: scaleX, height: scaleY), score: score, classIndex: bestClass))
        }
        return nonMaximumSuppression(detections, iouThreshold: nmsIoU, maxDetections: maxDetections)
    }

    /// AP of a detector on a dataset: Pascal VOC AP@0.5 (all-point) and COCO mAP@[.5:.95].
    public struct Result: Codable, Hashable, Sendable {
        public var averagePrecision50: Double
        public var cocoAveragePrecision: Double
        public var images: Int
        public var detections: Int
    }

    /// Runs `detector` (in evaluation mode, no gradients) over every image of `dataset`,
    /// letterboxed to the architecture's input size, and scores its detections in source-image
    /// pixels. `datasetClasses` maps the network's classes to the dataset's when they differ
    /// (a COCO detector scored on a person dataset: entry c is the dataset class of network class
    /// c, nil to drop its detections); by default they are the same.
    public static func evaluate(_ detector: Detector, on dataset: any DetectionDataset, batchSize: Int = 8,
                                datasetClasses: [Int?]? = nil) throws -> Result {
        let wasTraining = detector.isTraining
        detector.eval()
        defer { detector.train(wasTraining) }
        return try evaluate(architecture: detector.architecture, on: dataset, batchSize: batchSize, datasetClasses: datasetClasses) { try detector($0) }
    }

    /// The same evaluation for any network of `architecture` given as its forward function
    /// (image batch [N, 3, height, width] -> output [N, 1 + 4 + classes, rows, columns]), e.g. an INT8 one.
    public static func evaluate(
        architecture: DetectorArchitecture, on dataset: any DetectionDataset, batchSize: Int = 8, datasetClasses: [Int?]? = nil,
        forward: (Tensor) throws -> Tensor
    ) throws -> Result {
        let (width, height) = (architecture.inputWidth, architecture.inputHeight)
        let loader = BatchLoader(dataset: dataset, batchSize: batchSize, augmentation: .evaluation(at: architecture),
                                 shuffle: false, seed: 0)
        var images: [EvaluationImage] = []
        var detectionCount = 0
        for index in 0..<loader.batchesPerEpoch {
            let batch = try loader.batch(epoch: 0, index: index)
            let input = try Tensor(batch.images, shape: architecture.inputShape(batch: batch.batchSize))
            let output = try Torch.withNoGrad { try forward(input).floats() }
            let perImage = output.count / batch.batchSize
            for slot in 0..<batch.batchSize {
                let detections = decode(
                    output: output[(slot * perImage)..<((slot + 1) * perImage)], classCount: architecture.classCount,
                    columns: architecture.gridWidth, rows: architecture.gridHeight, inputWidth: width, inputHeight: height
                ).compactMap { detection -> Detection? in
                    guard let classIndex = datasetClasses.map({ $0[detection.classIndex] }) ?? detection.classIndex else { return nil }
                    return Detection(box: batch.transforms[slot].toSource(detection.box), score: detection.score, classIndex: classIndex)
                }
                detectionCount += detections.count
                images.append(EvaluationImage(item: dataset.item(at: batch.itemIndices[slot]), detections: detections))
            }
        }
        let classCount = datasetClasses == nil ? architecture.classCount : dataset.classNames.count
        let voc = VOCEvaluator.evaluate(images, classCount: classCount)
        let coco = COCOEvaluator.evaluate(images, classCount: classCount)
        return Result(averagePrecision50: voc.meanAveragePrecision ?? 0, cocoAveragePrecision: coco.averagePrecision ?? 0,
                      images: images.count, detections: detectionCount)
    }
}
