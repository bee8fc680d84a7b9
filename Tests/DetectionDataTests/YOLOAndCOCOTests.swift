import Foundation
import Testing
@testable import DetectionData

@Suite struct YOLODatasetTests {
    @Test func readsNormalisedBoxesAndReportsBadLines() throws {
        let root = try makeTemporaryDirectory("yolo")
        defer { cleanUp(root) }
        let fileManager = FileManager.default
        try fileManager.createDirectory(at: root.appendingPathComponent("images/val"), withIntermediateDirectories: true)
        try fileManager.createDirectory(at: root.appendingPathComponent("labels/val"), withIntermediateDirectories: true)
        let png = try ImageCodec.encodePNG(patternImage(width: 100, height: 50))
        let labels = [
            "a": "0 0.5 0.5 0.2 0.4\n2 0.25 0.5 0.1 0.2\n",  // person + a car that the filter drops
            "background": nil,
            "badclass": "7 0.5 0.5 0.1 0.1",
            "badline": "0 0.5 0.5 0.1",
            "outside": "0 0.95 0.5 0.3 0.2",
        ]
        for (stem, text) in labels {
            try png.write(to: root.appendingPathComponent("images/val/\(stem).png"))
            if let text { try Data(text.utf8).write(to: root.appendingPathComponent("labels/val/\(stem).txt")) }
        }
        let dataset = try YOLODataset(root: root, split: "val", sourceClassNames: ["person", "bicycle", "car"])
        #expect(dataset.items.map(\.id) == ["a", "background"])
        #expect(dataset.item(at: 0).objects == [ObjectAnnotation(box: BoundingBox(x0: 40, y0: 15, x1: 60, y1: 35), classIndex: 0)])
        #expect(dataset.item(at: 1).objects.isEmpty)
        #expect(dataset.report.objectsExcludedByClassFilter == 1)
        #expect(dataset.report.skippedByReason == ["unknown class": 1, "malformed annotation": 1, "box outside image": 1])
        #expect(throws: DatasetIssue.missingDirectory(path: root.appendingPathComponent("images/train").path)) {
            try YOLODataset(root: root, split: "train", sourceClassNames: ["person"])
        }
    }
}

@Suite struct COCODatasetTests {
    @Test func keepsCrowdBoxesAndValidatesReferences() throws {
        let root = try makeTemporaryDirectory("coco")
        defer { cleanUp(root) }
        let jpeg = try ImageCodec.encodeJPEG(patternImage(width: 64, height: 48))
        for name in ["1.jpg", "2.jpg", "3.jpg"] { try jpeg.write(to: root.appendingPathComponent(name)) }
        let json = """
        {"images": [{"id": 1, "file_name": "1.jpg", "width": 64, "height": 48},
                    {"id": 2, "file_name": "2.jpg", "width": 64, "height": 48},
                    {"id": 3, "file_name": "3.jpg", "width": 64, "height": 48},
                    {"id": 4, "file_name": "missing.jpg", "width": 64, "height": 48}],
         "annotations": [{"id": 10, "image_id": 1, "category_id": 1, "bbox": [4, 5, 10, 20], "iscrowd": 0},
                         {"id": 11, "image_id": 1, "category_id": 1, "bbox": [20, 5, 30, 40], "iscrowd": 1},
                         {"id": 12, "image_id": 1, "category_id": 18, "bbox": [0, 0, 5, 5]},
                         {"id": 13, "image_id": 3, "category_id": 99, "bbox": [0, 0, 5, 5]},
                         {"id": 14, "image_id": 7, "category_id": 1, "bbox": [0, 0, 5, 5]}],
         "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}]}
        """
        let annotationFile = root.appendingPathComponent("instances.json")
        try Data(json.utf8).write(to: annotationFile)
        let dataset = try COCODataset(annotationFile: annotationFile, imageDirectory: root)
        #expect(dataset.items.map(\.id) == ["1", "2"])
        #expect(dataset.item(at: 0).objects == [
            ObjectAnnotation(box: BoundingBox(x0: 4, y0: 5, x1: 14, y1: 25), classIndex: 0),
            ObjectAnnotation(box: BoundingBox(x0: 20, y0: 5, x1: 50, y1: 45), classIndex: 0, crowd: true),
        ])
        #expect(dataset.report.objectsExcludedByClassFilter == 1)
        #expect(dataset.report.skippedByReason == ["unknown class": 1, "missing image": 1, "malformed annotation": 1])

        try Data(#"{"images": [{"id": 1, "width": 3, "height": 3}], "annotations": [], "categories": []}"#.utf8).write(to: annotationFile)
        #expect(throws: DatasetIssue.malformedAnnotation(file: annotationFile.path, field: "images[0].file_name", reason: "missing")) {
            try COCODataset(annotationFile: annotationFile, imageDirectory: root)
        }
    }
}
