import Foundation
import Testing
@testable import DetectionData

/// The cases and pycocotools' numbers written by scripts/crosscheck_pycocotools.py.
private struct CrossCheckFixture: Decodable {
    struct Case: Decodable {
        struct ImageRecord: Decodable { var id: Int }
        struct Category: Decodable { var id: Int }
        struct Annotation: Decodable {
            var image_id: Int
            var category_id: Int
            var bbox: [Double]
            var iscrowd: Int
        }
        struct DetectionRecord: Decodable {
            var image_id: Int
            var category_id: Int
            var bbox: [Double]
            var score: Double
        }
        struct Expected: Decodable {
            var ap: Double
            var ap50: Double
            var ap75: Double
            var ar100: Double
            var per_category_ap: [Double]
        }
        var name: String
        var images: [ImageRecord]
        var categories: [Category]
        var annotations: [Annotation]
        var detections: [DetectionRecord]
        var expected: Expected
    }
    var pycocotools_version: String
    var cases: [Case]
}

private func box(_ xywh: [Double]) -> BoundingBox {
    BoundingBox(x0: xywh[0], y0: xywh[1], x1: xywh[0] + xywh[2], y1: xywh[1] + xywh[3])
}

@Suite struct COCOEvaluatorTests {
    @Test func matchesPycocotoolsOnEveryFixtureCase() throws {
        let url = try #require(Bundle.module.url(forResource: "coco_eval_crosscheck", withExtension: "json", subdirectory: "Fixtures"))
        let fixture = try JSONDecoder().decode(CrossCheckFixture.self, from: Data(contentsOf: url))
        #expect(fixture.cases.count >= 6)
        var largestDifference = 0.0
        for testCase in fixture.cases {
            let classOf = Dictionary(uniqueKeysWithValues: testCase.categories.map(\.id).sorted().enumerated().map { ($1, $0) })
            // pycocotools evaluates images in sorted id order.
            let images = testCase.images.map(\.id).sorted().map { id in
                EvaluationImage(
                    groundTruth: testCase.annotations.filter { $0.image_id == id }.map {
                        ObjectAnnotation(box: box($0.bbox), classIndex: classOf[$0.category_id]!, crowd: $0.iscrowd != 0)
                    },
                    detections: testCase.detections.filter { $0.image_id == id }.map {
                        Detection(box: box($0.bbox), score: $0.score, classIndex: classOf[$0.category_id]!)
                    })
            }
            let result = COCOEvaluator.evaluate(images, classCount: testCase.categories.count)
            let expected = testCase.expected
            func same(_ value: Double?, _ reference: Double) -> Bool {
                if let value, reference != -1 { largestDifference = max(largestDifference, abs(value - reference)) }
                return reference == -1 ? value == nil : value.map { abs($0 - reference) <= 1e-4 } ?? false
            }
            #expect(same(result.averagePrecision, expected.ap), "\(testCase.name): AP \(String(describing: result.averagePrecision)) vs \(expected.ap)")
            #expect(same(result.averagePrecision50, expected.ap50), "\(testCase.name): AP50 \(String(describing: result.averagePrecision50)) vs \(expected.ap50)")
            #expect(same(result.averagePrecision75, expected.ap75), "\(testCase.name): AP75")
            #expect(same(result.averageRecall, expected.ar100), "\(testCase.name): AR100 \(String(describing: result.averageRecall)) vs \(expected.ar100)")
            for (k, reference) in expected.per_category_ap.enumerated() {
                #expect(same(result.perClassAveragePrecision[k], reference), "\(testCase.name): class \(k)")
            }
        }
        print("largest difference from pycocotools: \(largestDifference)")
    }

    @Test func perfectDetectionsScoreOneAndCrowdMatchesAreIgnored() {
        let person = ObjectAnnotation(box: BoundingBox(x0: 10, y0: 10, x1: 50, y1: 90), classIndex: 0)
        let crowd = ObjectAnnotation(box: BoundingBox(x0: 100, y0: 0, x1: 200, y1: 100), classIndex: 0, crowd: true)
        let images = [EvaluationImage(groundTruth: [person, crowd], detections: [
            Detection(box: person.box, score: 0.9, classIndex: 0),
            // Inside the crowd region: IoU (intersection / detection area) is 1, so it is ignored.
            Detection(box: BoundingBox(x0: 120, y0: 10, x1: 140, y1: 60), score: 0.95, classIndex: 0),
        ])]
        let result = COCOEvaluator.evaluate(images, classCount: 1)
        // pycocotools divides by tp + fp + machine epsilon, so "1" is 1 - 2.2e-16.
        #expect(abs(result.averagePrecision! - 1) < 1e-12 && abs(result.averagePrecision50! - 1) < 1e-12)
        #expect(result.averageRecall == 1)
    }
}

@Suite struct VOCEvaluatorTests {
    @Test func handComputedAveragePrecision() {
        // Three positives (one more difficult). Ranked detections: TP, FP, TP, (difficult: skipped), FP.
        // Recall/precision: (1/3, 1), (1/3, 1/2), (2/3, 2/3), (2/3, 1/2).
        // Envelope: 1 up to recall 1/3, 2/3 up to 2/3, then 0: AP = 1/3 * 1 + 1/3 * 2/3 = 5/9.
        let a = BoundingBox(x0: 0, y0: 0, x1: 10, y1: 10), b = BoundingBox(x0: 20, y0: 0, x1: 30, y1: 10)
        let c = BoundingBox(x0: 40, y0: 0, x1: 50, y1: 10), hard = BoundingBox(x0: 60, y0: 0, x1: 70, y1: 10)
        let images = [
            EvaluationImage(groundTruth: [ObjectAnnotation(box: a, classIndex: 0), ObjectAnnotation(box: b, classIndex: 0),
                                          ObjectAnnotation(box: hard, classIndex: 0, difficult: true)],
                            detections: [Detection(box: a, score: 0.9, classIndex: 0),
                                         Detection(box: a, score: 0.8, classIndex: 0),  // duplicate: FP
                                         Detection(box: hard, score: 0.6, classIndex: 0)]),
            EvaluationImage(groundTruth: [ObjectAnnotation(box: c, classIndex: 0)],
                            detections: [Detection(box: c, score: 0.7, classIndex: 0),
                                         Detection(box: a, score: 0.5, classIndex: 0)]),  // no GT there: FP
        ]
        let result = VOCEvaluator.evaluate(images, classCount: 2)
        #expect(abs(result.averagePrecision[0]! - 5.0 / 9.0) < 1e-12)
        #expect(result.averagePrecision[1] == nil)
        #expect(abs(result.meanAveragePrecision! - 5.0 / 9.0) < 1e-12)
        // A detection with IoU exactly 0.5 is not a match (the devkit uses "> 0.5").
        let half = BoundingBox(x0: 0, y0: 0, x1: 10, y1: 5)
        let borderline = VOCEvaluator.evaluate([EvaluationImage(groundTruth: [ObjectAnnotation(box: a, classIndex: 0)],
                                                                detections: [Detection(box: half, score: 1, classIndex: 0)])], classCount: 1)
        #expect(borderline.averagePrecision[0] == 0)
    }
}

@Suite struct NMSTests {
    @Test func suppressesOverlapsPerClassOnly() {
        let detections = [
            Detection(box: BoundingBox(x0: 0, y0: 0, x1: 10, y1: 10), score: 0.8, classIndex: 0),
            Detection(box: BoundingBox(x0: 1, y0: 0, x1: 11, y1: 10), score: 0.9, classIndex: 0),  // IoU 9/11 with the first
            Detection(box: BoundingBox(x0: 1, y0: 0, x1: 11, y1: 10), score: 0.7, classIndex: 1),  // other class: kept
            Detection(box: BoundingBox(x0: 5, y0: 0, x1: 15, y1: 10), score: 0.6, classIndex: 0),  // IoU 6/14 with the best
            Detection(box: BoundingBox(x0: 50, y0: 50, x1: 60, y1: 60), score: 0.1, classIndex: 0),
        ]
        let kept = nonMaximumSuppression(detections, iouThreshold: 0.5)
        #expect(kept.map(\.score) == [0.9, 0.7, 0.6, 0.1])
        #expect(nonMaximumSuppression(detections, iouThreshold: 0.4).map(\.score) == [0.9, 0.7, 0.1])
        #expect(nonMaximumSuppression(detections, iouThreshold: 0.5, scoreThreshold: 0.65, maxDetections: 1).map(\.score) == [0.9])
        let exact = Detection(box: BoundingBox(x0: 1.5, y0: 2, x1: 30.25, y1: 40), score: 0.5, classIndex: 3)
        #expect(Detection(row: exact.row) == exact)
        #expect(Detection(row: [1, 2, 3]) == nil)
    }
}
