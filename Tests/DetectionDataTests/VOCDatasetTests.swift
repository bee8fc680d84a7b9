import Foundation
import Testing
@testable import DetectionData

@Suite struct VOCDatasetTests {
    @Test(.enabled(if: coco128PersonRoot != nil, "needs ../shared/data/coco128-person"))
    func loadsCoco128PersonSplits() throws {
        let train = try VOCDataset(root: coco128PersonRoot!, split: "train")
        let val = try VOCDataset(root: coco128PersonRoot!, split: "val")
        #expect(train.count == 61 && val.count == 73)
        #expect(train.report.loadedObjects == 254 && val.report.loadedObjects == 350)
        #expect(train.report.skipped.isEmpty && val.report.skipped.isEmpty)
        #expect(train.classNames == ["person"])
        // README example: VOC 169,164,478,628 is continuous [168, 163, 478, 628].
        let example = try #require((train.items + val.items).first { $0.id == "000000000036" })
        #expect(example.objects.contains { $0.box == BoundingBox(x0: 168, y0: 163, x1: 478, y1: 628) })
        for item in train.items + val.items {
            for object in item.objects {
                #expect(object.box.x0 >= 0 && object.box.x1 <= Double(item.width) && object.box.x0 < object.box.x1)
                #expect(object.box.y0 >= 0 && object.box.y1 <= Double(item.height) && object.box.y0 < object.box.y1)
            }
        }
    }

    @Test func brokenFilesAreSkippedAndCountedByReason() throws {
        let root = try makeTemporaryDirectory("voc-broken")
        defer { cleanUp(root) }
        let jpeg = try ImageCodec.encodeJPEG(patternImage(width: 40, height: 30))
        let good = vocXML(width: 40, height: 30, objects: [("person", ["1", "1", "20", "30"]), ("dog", ["5", "5", "10", "10"])])
        try writeVOCFixture(root: root, split: "train", entries: [
            ("good", good, jpeg),
            ("difficult", vocXML(width: 40, height: 30, objects: [("person", ["2", "2", "8", "9"])], difficult: true), jpeg),
            ("noimage", good, nil),
            ("noxml", nil, jpeg),
            ("corruptimage", good, Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3])),
            ("malformed", "<annotation><size><width>40</width>", jpeg),
            ("badnumber", vocXML(width: 40, height: 30, objects: [("person", ["a", "1", "20", "30"])]), jpeg),
            ("outside", vocXML(width: 40, height: 30, objects: [("person", ["1", "1", "60", "30"])]), jpeg),
            ("degenerate", vocXML(width: 40, height: 30, objects: [("person", ["10", "10", "9", "20"])]), jpeg),
            ("wrongsize", vocXML(width: 50, height: 30, objects: []), jpeg),
            ("overshoot", vocXML(width: 40, height: 30, objects: [("person", ["1", "1", "41", "30"])]), jpeg),
        ])
        let dataset = try VOCDataset(root: root, split: "train")
        #expect(dataset.items.map(\.id) == ["good", "difficult", "overshoot"])
        #expect(dataset.item(at: 0).objects == [ObjectAnnotation(box: BoundingBox(x0: 0, y0: 0, x1: 20, y1: 30), classIndex: 0)])
        #expect(dataset.item(at: 1).objects.first?.difficult == true)
        #expect(dataset.item(at: 2).objects.first?.box.x1 == 40)
        let report = dataset.report
        #expect(report.objectsExcludedByClassFilter == 1 && report.clippedBoxes == 1 && report.loadedObjects == 3)
        #expect(report.skippedByReason == [
            "missing image": 1, "missing annotation": 1, "unreadable image": 1, "malformed annotation": 2,
            "box outside image": 1, "degenerate box": 1, "image size mismatch": 1,
        ])
        #expect(report.skipped.contains(.malformedAnnotation(
            file: root.appendingPathComponent("Annotations/badnumber.xml").path,
            field: "object[0]/bndbox/xmin", reason: "'a' is not a number")))

        // Strict mode throws the first issue, naming the file.
        #expect(throws: DatasetIssue.missingImage(path: root.appendingPathComponent("JPEGImages/noimage.jpg").path)) {
            try VOCDataset(root: root, split: "train", options: DatasetOptions(policy: .strict))
        }
        #expect(throws: DatasetIssue.missingSplitFile(path: root.appendingPathComponent("ImageSets/Main/val.txt").path)) {
            try VOCDataset(root: root, split: "val")
        }
        // Without a class filter every class is kept, indexed in sorted name order.
        let all = try VOCDataset(root: root, split: "train", options: DatasetOptions(classFilter: nil))
        #expect(all.classNames == ["dog", "person"])
        #expect(all.item(at: 0).objects.map(\.classIndex) == [1, 0])
    }
}

@Suite struct EndToEndMetricsTests {
    @Test(.enabled(if: coco128PersonRoot != nil, "needs ../shared/data/coco128-person"))
    func groundTruthAsDetectionsScoresPerfectlyOnCoco128() throws {
        let val = try VOCDataset(root: coco128PersonRoot!, split: "val")
        let images = val.items.map { item in
            EvaluationImage(item: item, detections: item.objects.enumerated().map { index, object in
                Detection(box: object.box, score: 1 - Double(index) * 0.001, classIndex: object.classIndex)
            })
        }
        #expect(VOCEvaluator.evaluate(images, classCount: 1).meanAveragePrecision == 1)
        let coco = COCOEvaluator.evaluate(images, classCount: 1)
        #expect(abs(coco.averagePrecision! - 1) < 1e-12 && coco.averageRecall == 1)
        // Dropping every second detection halves recall; COCO AP follows the 101-point rule.
        let half = images.map { EvaluationImage(groundTruth: $0.groundTruth, detections: $0.detections.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)) }
        let kept = half.reduce(0) { $0 + $1.detections.count }
        let recall = Double(kept) / 350
        let voc = VOCEvaluator.evaluate(half, classCount: 1).meanAveragePrecision!
        #expect(abs(voc - recall) < 1e-12)
        let expectedCOCO = Double(COCOEvaluator.recallThresholds.filter { $0 <= recall }.count) / 101
        #expect(abs(COCOEvaluator.evaluate(half, classCount: 1).averagePrecision! - expectedCOCO) < 1e-9)
    }
}

@Suite struct ImageCheckTests {
    @Test func fullDecodeFindsTruncatedImagesThatTheHeaderCheckMisses() throws {
        let root = try makeTemporaryDirectory("voc-truncated")
        defer { cleanUp(root) }
        let jpeg = try ImageCodec.encodeJPEG(patternImage(width: 64, height: 64))
        let xml = vocXML(width: 64, height: 64, objects: [("person", ["1", "1", "20", "30"])])
        try writeVOCFixture(root: root, split: "val", entries: [("whole", xml, jpeg), ("truncated", xml, jpeg.prefix(jpeg.count * 2 / 3))])
        #expect(try VOCDataset(root: root, split: "val").count == 2)
        let decoded = try VOCDataset(root: root, split: "val", options: DatasetOptions(imageCheck: .fullDecode))
        #expect(decoded.items.map(\.id) == ["whole"])
        #expect(decoded.report.skippedByReason == ["unreadable image": 1])
        // Existence only: the annotated size is trusted.
        #expect(try VOCDataset(root: root, split: "val", options: DatasetOptions(imageCheck: .existence)).count == 2)
    }
}
