import Foundation

/// An axis-aligned box in continuous pixel coordinates: the pixel with integer index i covers
/// [i, i+1), so a box over pixel columns 10...19 is x0 = 10, x1 = 20 and its width is x1 - x0.
public struct BoundingBox: Hashable, Sendable, Codable {
    public var x0: Double
    public var y0: Double
    public var x1: Double
    public var y1: Double

    public init(x0: Double, y0: Double, x1: Double, y1: Double) {
        self.x0 = x0
        self.y0 = y0
        self.x1 = x1
        self.y1 = y1
    }

    public var width: Double { x1 - x0 }
    public var height: Double { y1 - y0 }
    /// Zero for degenerate (inverted or empty) boxes.
    public var area: Double { max(0, width) * max(0, height) }

    public func intersectionArea(with other: BoundingBox) -> Double {
        let w = min(x1, other.x1) - max(x0, other.x0)
        let h = min(y1, other.y1) - max(y0, other.y0)
        return w > 0 && h > 0 ? w * h : 0
    }

    /// Intersection over union; 0 when both boxes are empty.
    public func iou(with other: BoundingBox) -> Double {
        let intersection = intersectionArea(with: other)
        let union = area + other.area - intersection
        return union > 0 ? intersection / union : 0
    }

    /// The box clipped to [0, width] x [0, height].
    public func clipped(width: Double, height: Double) -> BoundingBox {
        BoundingBox(x0: min(max(x0, 0), width), y0: min(max(y0, 0), height),
                    x1: min(max(x1, 0), width), y1: min(max(y1, 0), height))
    }
}

/// One labelled object of an image.
public struct ObjectAnnotation: Hashable, Sendable, Codable {
    public var box: BoundingBox
    /// Index into the dataset's `classNames`.
    public var classIndex: Int
    /// Pascal VOC "difficult": evaluation neither rewards nor penalises detections of it.
    public var difficult: Bool
    /// COCO "iscrowd": the box covers a group; detections inside it are ignored, not false positives.
    public var crowd: Bool

    public init(box: BoundingBox, classIndex: Int, difficult: Bool = false, crowd: Bool = false) {
        self.box = box
        self.classIndex = classIndex
        self.difficult = difficult
        self.crowd = crowd
    }
}

/// One image and its labels.
public struct DetectionItem: Hashable, Sendable, Codable {
    /// Stable identifier (file stem for VOC/YOLO, image id for COCO).
    public var id: String
    public var imageURL: URL
    public var width: Int
    public var height: Int
    public var objects: [ObjectAnnotation]

    public init(id: String, imageURL: URL, width: Int, height: Int, objects: [ObjectAnnotation]) {
        self.id = id
        self.imageURL = imageURL
        self.width = width
        self.height = height
        self.objects = objects
    }
}

/// A detection dataset whose annotations are loaded and validated up front.
public protocol DetectionDataset: Sendable {
    /// Names of the classes that `ObjectAnnotation.classIndex` refers to.
    var classNames: [String] { get }
    var count: Int { get }
    func item(at index: Int) -> DetectionItem
    /// What was loaded and what was skipped, and why.
    var report: LoadingReport { get }
}

extension DetectionDataset {
    public var items: [DetectionItem] { (0..<count).map(item(at:)) }
}

/// Something wrong with a dataset file. Each case names the file and what was expected.
public enum DatasetIssue: Error, Hashable, Sendable, Codable, CustomStringConvertible {
    case missingDirectory(path: String)
    case missingSplitFile(path: String)
    case missingImage(path: String)
    case unreadableImage(path: String, reason: String)
    case missingAnnotation(path: String)
    case malformedAnnotation(file: String, field: String, reason: String)
    case imageSizeMismatch(file: String, annotated: [Int], actual: [Int])
    case boxOutsideImage(file: String, object: Int, box: BoundingBox, imageWidth: Int, imageHeight: Int)
    case degenerateBox(file: String, object: Int, box: BoundingBox)
    case unknownClass(file: String, object: Int, name: String)

    /// A short stable key for counting issues by kind in a `LoadingReport`.
    public var reason: String {
        switch self {
        case .missingDirectory: "missing directory"
        case .missingSplitFile: "missing split file"
        case .missingImage: "missing image"
        case .unreadableImage: "unreadable image"
        case .missingAnnotation: "missing annotation"
        case .malformedAnnotation: "malformed annotation"
        case .imageSizeMismatch: "image size mismatch"
        case .boxOutsideImage: "box outside image"
        case .degenerateBox: "degenerate box"
        case .unknownClass: "unknown class"
        }
    }

    public var description: String {
        switch self {
        case let .missingDirectory(path): "directory \(path) does not exist"
        case let .missingSplitFile(path): "split file \(path) does not exist"
        case let .missingImage(path): "image \(path) does not exist"
        case let .unreadableImage(path, reason): "image \(path) cannot be read: \(reason)"
        case let .missingAnnotation(path): "annotation file \(path) does not exist"
        case let .malformedAnnotation(file, field, reason): "\(file): field '\(field)': \(reason)"
        case let .imageSizeMismatch(file, annotated, actual):
            "\(file): annotated size \(annotated.map(String.init).joined(separator: "x")) differs from the image's \(actual.map(String.init).joined(separator: "x"))"
        case let .boxOutsideImage(file, object, box, w, h):
            "\(file): object \(object) box [\(box.x0), \(box.y0), \(box.x1), \(box.y1)] lies outside the \(w)x\(h) image"
        case let .degenerateBox(file, object, box):
            "\(file): object \(object) box [\(box.x0), \(box.y0), \(box.x1), \(box.y1)] has no area (needs x0 < x1 and y0 < y1)"
        case let .unknownClass(file, object, name): "\(file): object \(object) has unknown class '\(name)'"
        }
    }
}

/// What to do when a file fails validation.
public enum ValidationPolicy: String, Hashable, Sendable, Codable {
    /// Throw the first issue.
    case strict
    /// Skip the whole image with the issue (never just the box: an image with one of its boxes
    /// removed would teach the detector that a real object is background) and record it.
    case skipInvalidImages
}

/// The outcome of loading a dataset: nothing is dropped without a line here.
public struct LoadingReport: Hashable, Sendable, Codable, CustomStringConvertible {
    public var loadedImages = 0
    public var loadedObjects = 0
    /// Objects of classes outside the class filter (not an error, but counted).
    public var objectsExcludedByClassFilter = 0
    /// Boxes that overshot the image border by at most the tolerance and were clipped to it.
    public var clippedBoxes = 0
    /// Images skipped, each with the issue that caused it.
    public var skipped: [DatasetIssue] = []

    public init() {}

    public var skippedByReason: [String: Int] {
        skipped.reduce(into: [:]) { $0[$1.reason, default: 0] += 1 }
    }

    public var description: String {
        var lines = ["loaded \(loadedImages) images with \(loadedObjects) objects",
                     "excluded by class filter: \(objectsExcludedByClassFilter) objects",
                     "clipped to the image border: \(clippedBoxes) boxes",
                     "skipped images: \(skipped.count)"]
        for (reason, count) in skippedByReason.sorted(by: { $0.key < $1.key }) { lines.append("  \(reason): \(count)") }
        return lines.joined(separator: "\n")
    }
}

/// How thoroughly the readers check image files while loading annotations.
public enum ImageCheck: String, Hashable, Sendable, Codable, CaseIterable {
    /// Only that the file exists (fastest; size comes from the annotation).
    case existence
    /// Decode the header: catches non-image and corrupt-header files and size mismatches, cheaply.
    case header
    /// Decode every pixel: also catches truncated or damaged image data (slow on large datasets).
    case fullDecode
}

/// Options shared by the dataset readers.
public struct DatasetOptions: Hashable, Sendable, Codable {
    /// Class names to keep, in the order that defines `classIndex`; nil keeps every class.
    public var classFilter: [String]?
    public var policy: ValidationPolicy
    /// How much of each image file is read while loading annotations.
    public var imageCheck: ImageCheck
    /// Boxes that overshoot the border by up to this many pixels are clipped instead of rejected
    /// (rounding in converters commonly produces a pixel of overshoot).
    public var borderTolerance: Double

    public init(classFilter: [String]? = ["person"], policy: ValidationPolicy = .skipInvalidImages,
                imageCheck: ImageCheck = .header, borderTolerance: Double = 1) {
        self.classFilter = classFilter
        self.policy = policy
        self.imageCheck = imageCheck
        self.borderTolerance = borderTolerance
    }
}

/// Validation shared by all readers: class filter, box checks, the skip-or-throw policy.
struct AnnotationValidator {
    let options: DatasetOptions
    var report = LoadingReport()

    init(options: DatasetOptions) { self.options = options }

    /// Records `issue` (skip policy) or throws it (strict policy).
    mutating func skip(_ issue: DatasetIssue) throws(DatasetIssue) {
        if options.policy == .strict { throw issue }
        report.skipped.append(issue)
    }

    /// Checks that a box lies in the image and has area; returns it clipped to the image when it
    /// overshoots by no more than the tolerance, and whether clipping changed it.
    func validatedBox(_ box: BoundingBox, file: String, object: Int, width: Int, height: Int) -> Result<(box: BoundingBox, clipped: Bool), DatasetIssue> {
        let values = [box.x0, box.y0, box.x1, box.y1]
        guard values.allSatisfy(\.isFinite), box.x0 < box.x1, box.y0 < box.y1 else {
            return .failure(.degenerateBox(file: file, object: object, box: box))
        }
        let tolerance = options.borderTolerance
        guard box.x0 >= -tolerance, box.y0 >= -tolerance,
              box.x1 <= Double(width) + tolerance, box.y1 <= Double(height) + tolerance else {
            return .failure(.boxOutsideImage(file: file, object: object, box: box, imageWidth: width, imageHeight: height))
        }
        let clipped = box.clipped(width: Double(width), height: Double(height))
        guard clipped.x0 < clipped.x1, clipped.y0 < clipped.y1 else {
            return .failure(.degenerateBox(file: file, object: object, box: clipped))
        }
        return .success((clipped, clipped != box))
    }

    /// Adds an accepted image to the report.
    mutating func accept(_ item: DetectionItem, clippedBoxes: Int, excludedObjects: Int) {
        report.loadedImages += 1
        report.loadedObjects += item.objects.count
        report.clippedBoxes += clippedBoxes
        report.objectsExcludedByClassFilter += excludedObjects
    }

    /// Checks that the image exists and (optionally) that its header decodes; returns its size.
    func checkImage(_ url: URL) -> Result<(width: Int, height: Int)?, DatasetIssue> {
        guard FileManager.default.fileExists(atPath: url.path) else { return .failure(.missingImage(path: url.path)) }
        do {
            switch options.imageCheck {
            case .existence:
                return .success(nil)
            case .header:
                let header = try ImageCodec.header(contentsOf: url)
                return .success((header.width, header.height))
            case .fullDecode:
                let image = try ImageCodec.decode(contentsOf: url)
                return .success((image.width, image.height))
            }
        } catch {
            return .failure(.unreadableImage(path: url.path, reason: error.description))
        }
    }
}

/// Finds an image file next to a stem, trying the usual extensions.
func findImage(directory: URL, stem: String) -> URL? {
    for ext in ["jpg", "jpeg", "png", "JPG", "JPEG", "PNG"] {
        let candidate = directory.appendingPathComponent("\(stem).\(ext)")
        if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
    }
    return nil
}
