/// Pascal VOC average precision (the VOC2010+ devkit rule): for each class, detections of all
/// images are ranked by score; a detection is a true positive when its best-overlapping ground
/// truth box of that class (IoU > threshold) is not yet taken, otherwise a false positive.
/// Detections whose best match is "difficult" (or a COCO crowd box) count as neither, and such
/// boxes are left out of the number of positives. AP is the area under the precision/recall
/// curve after precision is made non-increasing ("all-point interpolation").
///
/// Boxes use continuous coordinates, so IoU has no "+1" pixel term (the original devkit's
/// integer-pixel convention); convert VOC files with `VOCDataset`, which maps xmin-1...xmax.
public enum VOCEvaluator {
    public struct Result: Hashable, Sendable, Codable {
        /// AP per class; nil for classes without any non-difficult ground truth.
        public var averagePrecision: [Double?]
        /// Mean over the classes that have an AP; nil if none has.
        public var meanAveragePrecision: Double?
    }

    public static func evaluate(_ images: [EvaluationImage], classCount: Int, iouThreshold: Double = 0.5) -> Result {
        let perClass = (0..<classCount).map { averagePrecision(images, classIndex: $0, iouThreshold: iouThreshold) }
        let defined = perClass.compactMap { $0 }
        return Result(averagePrecision: perClass,
                      meanAveragePrecision: defined.isEmpty ? nil : defined.reduce(0, +) / Double(defined.count))
    }

    static func averagePrecision(_ images: [EvaluationImage], classIndex: Int, iouThreshold: Double) -> Double? {
        var positives = 0
        var ranked: [(score: Double, image: Int, order: Int, box: BoundingBox)] = []
        for (imageIndex, image) in images.enumerated() {
            positives += image.groundTruth.filter { $0.classIndex == classIndex && !$0.difficult && !$0.crowd }.count
            for (order, detection) in image.detections.enumerated() where detection.classIndex == classIndex {
                ranked.append((detection.score, imageIndex, order, detection.box))
            }
        }
        guard positives > 0 else { return nil }
        // Stable ranking: equal scores keep image order, then detection order.
        ranked.sort { $0.score != $1.score ? $0.score > $1.score : ($0.image, $0.order) < ($1.image, $1.order) }
        var taken = images.map { [Bool](repeating: false, count: $0.groundTruth.count) }
        var truePositives = 0, falsePositives = 0
        var recall: [Double] = [], precision: [Double] = []
        for detection in ranked {
            let truth = images[detection.image].groundTruth
            var best = -1
            var bestOverlap = -Double.infinity
            for (index, object) in truth.enumerated() where object.classIndex == classIndex {
                let overlap = object.box.iou(with: detection.box)
                if overlap > bestOverlap { bestOverlap = overlap; best = index }
            }
            if best >= 0, bestOverlap > iouThreshold {
                let object = truth[best]
                if object.difficult || object.crowd { continue }
                if taken[detection.image][best] {
                    falsePositives += 1
                } else {
                    taken[detection.image][best] = true
                    truePositives += 1
                }
            } else {
                falsePositives += 1
            }
            recall.append(Double(truePositives) / Double(positives))
            precision.append(Double(truePositives) / Double(truePositives + falsePositives))
        }
        // Sentinels, then the precision envelope from the right, then sum over recall steps.
        let mrec = [0] + recall + [1]
        var mpre = [0] + precision + [0]
        for index in stride(from: mpre.count - 2, through: 0, by: -1) { mpre[index] = max(mpre[index], mpre[index + 1]) }
        var area = 0.0
        for index in 1..<mrec.count where mrec[index] != mrec[index - 1] {
            area += (mrec[index] - mrec[index - 1]) * mpre[index]
        }
        return area
    }
}
