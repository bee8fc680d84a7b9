/// COCO box AP, computed the way pycocotools' COCOeval does it (iouType "bbox", area range
/// "all", maxDets 100), so the numbers match it to floating-point rounding:
///
/// - per image and class, detections sorted by score (stable) and cut to `maxDetections`;
/// - ground truth ordered with crowd boxes last; IoU against a crowd box is
///   intersection / detection area;
/// - for each IoU threshold 0.50:0.05:0.95, each detection in turn takes the unmatched
///   non-crowd box (or any crowd box) with the highest IoU >= threshold, preferring non-crowd
///   boxes; a detection matched to a crowd box is ignored;
/// - per class, detections of all images ranked by score (stable, in image order), precision
///   made non-increasing, and sampled at 101 recall points 0:0.01:1 (0 past the last recall);
/// - AP is the mean over thresholds, recall points and classes that have non-crowd ground truth.
public enum COCOEvaluator {
    public struct Result: Hashable, Sendable, Codable {
        /// AP averaged over IoU 0.50:0.95 (COCO's headline "mAP"); nil when no class has ground truth
        /// (pycocotools prints -1).
        public var averagePrecision: Double?
        public var averagePrecision50: Double?
        public var averagePrecision75: Double?
        /// AP over 0.50:0.95 for each class; nil for classes without non-crowd ground truth.
        public var perClassAveragePrecision: [Double?]
        /// Mean recall at maxDetections over IoU thresholds and classes (pycocotools' AR@100).
        public var averageRecall: Double?
    }

    /// IoU thresholds as numpy.linspace(0.5, 0.95, 10) computes them (bit for bit).
    public static let iouThresholds: [Double] = linspace(0.5, 0.95, count: 10)
    /// Recall sample points as numpy.linspace(0, 1, 101).
    public static let recallThresholds: [Double] = linspace(0, 1, count: 101)

    static func linspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
        let step = (stop - start) / Double(count - 1)
        return (0..<count).map { $0 == count - 1 ? stop : Double($0) * step + start }
    }

    /// - Parameter images: evaluated in this order (pycocotools uses sorted image ids; pass the
    ///   images in that order to reproduce its tie-breaking between equal scores).
    public static func evaluate(_ images: [EvaluationImage], classCount: Int, maxDetections: Int = 100) -> Result {
        let thresholdCount = iouThresholds.count
        // precision[class][threshold] = 101 sampled values, nil when the class has no ground truth.
        var precision = [[[Double]]?](repeating: nil, count: classCount)
        var recall = [[Double]?](repeating: nil, count: classCount)
        for classIndex in 0..<classCount {
            var scores: [Double] = []
            var matched: [[Bool]] = Array(repeating: [], count: thresholdCount)
            var ignored: [[Bool]] = Array(repeating: [], count: thresholdCount)
            var positives = 0
            for image in images {
                let result = evaluateImage(image, classIndex: classIndex, maxDetections: maxDetections)
                scores += result.scores
                positives += result.positives
                for t in 0..<thresholdCount {
                    matched[t] += result.matched[t]
                    ignored[t] += result.ignored[t]
                }
            }
            guard positives > 0 else { continue }
            // numpy argsort(-scores, kind="mergesort") is stable: ties keep concatenation order.
            let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            var classPrecision: [[Double]] = []
            var classRecall: [Double] = []
            for t in 0..<thresholdCount {
                var tp = 0.0, fp = 0.0
                var rc: [Double] = [], pr: [Double] = []
                // Ignored detections stay in the sequence without counting, as in pycocotools.
                for index in order {
                    if !ignored[t][index] {
                        if matched[t][index] { tp += 1 } else { fp += 1 }
                    }
                    rc.append(tp / Double(positives))
                    pr.append(tp / (fp + tp + Double.ulpOfOne))
                }
                classRecall.append(rc.last ?? 0)
                if pr.count > 1 {
                    for i in stride(from: pr.count - 1, to: 0, by: -1) where pr[i] > pr[i - 1] { pr[i - 1] = pr[i] }
                }
                // searchsorted(rc, threshold, side="left"): first index with rc >= threshold.
                var sampled = [Double](repeating: 0, count: recallThresholds.count)
                var cursor = 0
                for (r, threshold) in recallThresholds.enumerated() {
                    while cursor < rc.count, rc[cursor] < threshold { cursor += 1 }
                    if cursor < pr.count { sampled[r] = pr[cursor] } else { break }
                }
                classPrecision.append(sampled)
            }
            precision[classIndex] = classPrecision
            recall[classIndex] = classRecall
        }

        func mean(_ values: [Double]) -> Double? { values.isEmpty ? nil : values.reduce(0, +) / Double(values.count) }
        func meanPrecision(thresholds: Range<Int>, classes: [Int]) -> Double? {
            var values: [Double] = []
            // pycocotools averages the entries > -1 of a [T, R, K] array (classes without ground
            // truth hold -1); numpy's pairwise summation may differ in the last bits only.
            for t in thresholds { for r in recallThresholds.indices { for k in classes {
                if let p = precision[k] { values.append(p[t][r]) }
            } } }
            return mean(values)
        }
        let allClasses = Array(0..<classCount)
        let index75 = iouThresholds.firstIndex { abs($0 - 0.75) < 1e-9 }!
        return Result(
            averagePrecision: meanPrecision(thresholds: 0..<thresholdCount, classes: allClasses),
            averagePrecision50: meanPrecision(thresholds: 0..<1, classes: allClasses),
            averagePrecision75: meanPrecision(thresholds: index75..<(index75 + 1), classes: allClasses),
            perClassAveragePrecision: allClasses.map { meanPrecision(thresholds: 0..<thresholdCount, classes: [$0]) },
            averageRecall: mean(allClasses.flatMap { recall[$0] ?? [] })
        )
    }

    /// pycocotools' evaluateImg for one image and class.
    static func evaluateImage(_ image: EvaluationImage, classIndex: Int, maxDetections: Int)
        -> (scores: [Double], matched: [[Bool]], ignored: [[Bool]], positives: Int) {
        let truthUnsorted = image.groundTruth.filter { $0.classIndex == classIndex }
        // Stable sort with crowd (ignored) boxes last.
        let truth = truthUnsorted.filter { !$0.crowd } + truthUnsorted.filter(\.crowd)
        let detectionsAll = image.detections.enumerated().filter { $0.element.classIndex == classIndex }
        let detections = detectionsAll.sorted {
            $0.element.score != $1.element.score ? $0.element.score > $1.element.score : $0.offset < $1.offset
        }.prefix(maxDetections).map(\.element)
        let positives = truth.filter { !$0.crowd }.count
        let thresholdCount = iouThresholds.count
        guard !detections.isEmpty else {
            return ([], Array(repeating: [], count: thresholdCount), Array(repeating: [], count: thresholdCount), positives)
        }
        let overlaps = detections.map { detection in truth.map { cocoIoU(detection: detection.box, truth: $0.box, crowd: $0.crowd) } }
        var matched = Array(repeating: [Bool](repeating: false, count: detections.count), count: thresholdCount)
        var ignored = matched
        for (t, threshold) in iouThresholds.enumerated() {
            var truthTaken = [Bool](repeating: false, count: truth.count)
            for d in detections.indices {
                var best = min(threshold, 1 - 1e-10)
                var match = -1
                for g in truth.indices {
                    if truthTaken[g] && !truth[g].crowd { continue }
                    // Once matched to a regular box, stop at the first crowd box (they come last).
                    if match > -1 && !truth[match].crowd && truth[g].crowd { break }
                    if overlaps[d][g] < best { continue }
                    best = overlaps[d][g]
                    match = g
                }
                guard match > -1 else { continue }
                ignored[t][d] = truth[match].crowd
                matched[t][d] = true
                truthTaken[match] = true
            }
        }
        return (detections.map(\.score), matched, ignored, positives)
    }

    /// pycocotools' bbIou on [x, y, w, h] boxes; against a crowd box the union is the detection area.
    static func cocoIoU(detection: BoundingBox, truth: BoundingBox, crowd: Bool) -> Double {
        let w = min(detection.x1, truth.x1) - max(detection.x0, truth.x0)
        guard w > 0 else { return 0 }
        let h = min(detection.y1, truth.y1) - max(detection.y0, truth.y0)
        guard h > 0 else { return 0 }
        let intersection = w * h
        let detectionArea = detection.width * detection.height
        let union = crowd ? detectionArea : detectionArea + truth.width * truth.height - intersection
        return intersection / union
    }
}
