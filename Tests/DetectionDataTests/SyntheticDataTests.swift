import Foundation
import Testing
@testable import DetectionData

@Suite struct SyntheticDataTests {
    @Test func sameSeedGivesIdenticalFilesAndBoxesRoundTripThroughVOC() throws {
        let first = try makeTemporaryDirectory("synth-a"), second = try makeTemporaryDirectory("synth-b")
        defer { cleanUp(first); cleanUp(second) }
        let writer = SyntheticDataWriter()
        let summary = try writer.write(to: first, seed: 7, trainCount: 12, valCount: 5)
        try writer.write(to: second, seed: 7, trainCount: 12, valCount: 5)
        #expect(summary.trainImages == 12 && summary.valImages == 5)
        let files = try FileManager.default.subpathsOfDirectory(atPath: first.path).sorted().filter {
            !((try? first.appendingPathComponent($0).resourceValues(forKeys: [.isDirectoryKey]).isDirectory) ?? true)
        }
        #expect(files.count == 17 * 2 + 2 + 1)  // image + XML per image, two split lists, synthetic.json
        for file in files {
            let a = try Data(contentsOf: first.appendingPathComponent(file)), b = try Data(contentsOf: second.appendingPathComponent(file))
            #expect(a == b, "\(file) differs between two runs with the same seed")
        }
        let train = try VOCDataset(root: first, split: "train", options: DatasetOptions(policy: .strict))
        let val = try VOCDataset(root: first, split: "val", options: DatasetOptions(policy: .strict))
        #expect(train.count == 12 && val.count == 5)
        #expect(train.report.loadedObjects == summary.trainObjects && val.report.loadedObjects == summary.valObjects)
        for index in 0..<train.count {
            let rendered = SyntheticPersonDataset.render(seed: 7, split: .train, index: index)
            #expect(train.item(at: index).objects == rendered.objects)
        }
        let other = SyntheticPersonDataset.render(seed: 8, split: .train, index: 0)
        #expect(other.image != SyntheticPersonDataset.render(seed: 7, split: .train, index: 0).image)
    }

    @Test func figuresFollowTheConfiguredRanges() throws {
        var config = SyntheticDataConfig()
        config.emptyImageProbability = 0
        var heights: [Double] = []
        for index in 0..<24 {
            let (image, objects) = SyntheticPersonDataset.render(seed: 3, split: .val, index: index, config: config)
            #expect(image.width == 320 && image.height == 320)
            #expect((1...4).contains(objects.count))
            for object in objects {
                #expect(object.box.x0 >= 0 && object.box.y0 >= 0 && object.box.x1 <= 320 && object.box.y1 <= 320)
                #expect(object.box.x0.rounded() == object.box.x0 && object.box.y1.rounded() == object.box.y1)
                heights.append(object.box.height)
                // Person-like: taller than wide in most poses, never absurdly flat.
                #expect(object.box.height > 0.5 * object.box.width)
            }
        }
        #expect(heights.min()! >= 36 && heights.max()! <= 200)
        #expect(heights.max()! - heights.min()! > 80)
        config.figureHeight = 5...10
        #expect(throws: SyntheticDataError.self) { try config.validate() }
    }

    @Test func canvasExtentIsExactlyThePaintedPixels() {
        var canvas = Canvas(width: 50, height: 40)
        canvas.fillSegment(from: (10.3, 5.7), to: (30.2, 25.1), thickness: 4.5, colour: RGB(r: 255, g: 255, b: 255))
        canvas.fillEllipse(cx: 40, cy: 30, rx: 3.2, ry: 6.1, colour: RGB(r: 255, g: 0, b: 0))
        var painted: (Int, Int, Int, Int) = (Int.max, Int.max, Int.min, Int.min)
        for y in 0..<40 { for x in 0..<50 where canvas.image.pixels[(y * 50 + x) * 3] != 0 {
            painted = (min(painted.0, x), min(painted.1, y), max(painted.2, x), max(painted.3, y))
        } }
        let extent = canvas.extent!
        #expect(extent.minX == painted.0 && extent.minY == painted.1 && extent.maxX == painted.2 && extent.maxY == painted.3)
    }
}
