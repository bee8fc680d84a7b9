/// A scored detector output.
public struct Detection: Hashable, Sendable, Codable {
    public var box: BoundingBox
    public var score: Double
    public var classIndex: Int

    public init(box: BoundingBox, score: Double, classIndex: Int) {
        self.box = box
        self.score = score
        self.classIndex = classIndex
    }

    /// From a row [x0, y0, x1, y1, score, class], the layout detector heads emit; nil unless the
    /// row has exactly 6 values.
    public init?(row: [Float]) {
        guard row.count == 6 else { return nil }
        self.init(box: BoundingBox(x0: Double(row[0]), y0: Double(row[1]), x1: Double(row[2]), y1: Double(row[3])),
                  score: Double(row[4]), classIndex: Int(row[5]))
    }

    public var row: [Float] { [Float(box.x0), Float(box.y0), Float(box.x1), Float(box.y1), Float(score), Float(classIndex)] }
}

/// Greedy non-maximum suppression, done separately for each class: detections are visited by
/// decreasing score (ties keep input order) and each is kept unless it overlaps an already kept
/// detection of the same class with IoU above `iouThreshold`.
/// - Parameters:
///   - scoreThreshold: detections scoring below it are dropped first.
///   - maxDetections: at most this many survivors (highest scores) are returned.
/// - Returns: the kept detections, by decreasing score.
public func nonMaximumSuppression(_ detections: [Detection], iouThreshold: Double, scoreThreshold: Double = -.infinity,
                                  maxDetections: Int = .max) -> [Detection] {
    let order = detections.indices.filter { detections[$0].score >= scoreThreshold }.sorted {
        detections[$0].score != detections[$1].score ? detections[$0].score > detections[$1].score : $0 < $1
    }
    var keptByClass: [Int: [BoundingBox]] = [:]
    var kept: [Detection] = []
    for index in order {
        let candidate = detections[index]
        let others = keptByClass[candidate.classIndex, default: []]
        if others.contains(where: { $0.iou(with: candidate.box) > iouThreshold }) { continue }
        keptByClass[candidate.classIndex, default: []].append(candidate.box)
        kept.append(candidate)
        if kept.count == maxDetections { break }
    }
    return kept
}

/// Ground truth and detections of one image, the unit the AP evaluators consume.
public struct EvaluationImage: Hashable, Sendable, Codable {
    public var groundTruth: [ObjectAnnotation]
    public var detections: [Detection]

    public init(groundTruth: [ObjectAnnotation], detections: [Detection]) {
        self.groundTruth = groundTruth
        self.detections = detections
    }
}

extension EvaluationImage {
    /// Pairs a dataset item's annotations with detections in the same (source image) pixels.
    public init(item: DetectionItem, detections: [Detection]) {
        self.init(groundTruth: item.objects, detections: detections)
    }
}
