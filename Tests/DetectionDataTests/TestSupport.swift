import Foundation
@testable import DetectionData

/// The shared coco128-person dataset (see its README), found by walking up from this file
/// (repository root/../shared/data), or from EDGENAS_SHARED_DATA.
let coco128PersonRoot: URL? = {
    let fileManager = FileManager.default
    if let override = ProcessInfo.processInfo.environment["EDGENAS_SHARED_DATA"] {
        let url = URL(fileURLWithPath: override).appendingPathComponent("coco128-person")
        return fileManager.fileExists(atPath: url.path) ? url : nil
    }
    var directory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
    while directory.path != "/" {
        let candidate = directory.appendingPathComponent("shared/data/coco128-person")
        if fileManager.fileExists(atPath: candidate.appendingPathComponent("ImageSets").path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}()

/// A fresh temporary directory, removed by the caller with `cleanUp`.
func makeTemporaryDirectory(_ label: String = "detectiondata") throws -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("\(label)-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func cleanUp(_ url: URL) { try? FileManager.default.removeItem(at: url) }

/// A deterministic test pattern: each channel is a different function of the position.
func patternImage(width: Int, height: Int, channels: Int = 3) -> Image {
    var pixels = [UInt8](repeating: 0, count: width * height * channels)
    for y in 0..<height {
        for x in 0..<width {
            for c in 0..<channels {
                pixels[(y * width + x) * channels + c] = UInt8((x * (c + 1) * 7 + y * 3 + c * 50) % 256)
            }
        }
    }
    return Image(width: width, height: height, channels: channels, pixels: pixels)
}

/// Writes a minimal VOC dataset: one entry per (id, objects XML, image) into `root`.
func writeVOCFixture(root: URL, split: String, entries: [(id: String, xml: String?, image: Data?)]) throws {
    let fileManager = FileManager.default
    for directory in ["JPEGImages", "Annotations", "ImageSets/Main"] {
        try fileManager.createDirectory(at: root.appendingPathComponent(directory), withIntermediateDirectories: true)
    }
    for entry in entries {
        if let xml = entry.xml { try Data(xml.utf8).write(to: root.appendingPathComponent("Annotations/\(entry.id).xml")) }
        if let image = entry.image { try image.write(to: root.appendingPathComponent("JPEGImages/\(entry.id).jpg")) }
    }
    try Data(entries.map(\.id).joined(separator: "\n").utf8).write(to: root.appendingPathComponent("ImageSets/Main/\(split).txt"))
}

func vocXML(width: Int, height: Int, objects: [(name: String, box: [String])], difficult: Bool = false) -> String {
    var xml = "<annotation><size><width>\(width)</width><height>\(height)</height><depth>3</depth></size>"
    for object in objects {
        xml += "<object><name>\(object.name)</name><difficult>\(difficult ? 1 : 0)</difficult><bndbox>"
        for (field, value) in zip(["xmin", "ymin", "xmax", "ymax"], object.box) { xml += "<\(field)>\(value)</\(field)>" }
        xml += "</bndbox></object>"
    }
    return xml + "</annotation>"
}
