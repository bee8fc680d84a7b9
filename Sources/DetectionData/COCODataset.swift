import Foundation

/// COCO instances JSON (`images`, `annotations`, `categories`) plus a directory of images.
/// `iscrowd` boxes are kept with `crowd = true`: evaluation treats them as ignore regions.
public struct COCODataset: DetectionDataset {
    public let annotationFile: URL
    public let imageDirectory: URL
    public let classNames: [String]
    public let report: LoadingReport
    private let loaded: [DetectionItem]

    public var count: Int { loaded.count }
    public func item(at index: Int) -> DetectionItem { loaded[index] }

    struct File: Decodable {
        struct ImageRecord: Decodable {
            var id: Int
            var file_name: String
            var width: Int
            var height: Int
        }
        struct AnnotationRecord: Decodable {
            var id: Int?
            var image_id: Int
            var category_id: Int
            var bbox: [Double]
            var iscrowd: Int?
        }
        struct CategoryRecord: Decodable {
            var id: Int
            var name: String
        }
        var images: [ImageRecord]
        var annotations: [AnnotationRecord]
        var categories: [CategoryRecord]
    }

    public init(annotationFile: URL, imageDirectory: URL, options: DatasetOptions = DatasetOptions()) throws(DatasetIssue) {
        self.annotationFile = annotationFile
        self.imageDirectory = imageDirectory
        let path = annotationFile.path
        guard let data = FileManager.default.contents(atPath: path) else { throw .missingAnnotation(path: path) }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw .malformedAnnotation(file: path, field: Self.fieldPath(context.codingPath + [key]), reason: "missing")
        } catch let DecodingError.typeMismatch(type, context) {
            throw .malformedAnnotation(file: path, field: Self.fieldPath(context.codingPath), reason: "expected \(type)")
        } catch let DecodingError.valueNotFound(type, context) {
            throw .malformedAnnotation(file: path, field: Self.fieldPath(context.codingPath), reason: "expected \(type), found null")
        } catch {
            throw .malformedAnnotation(file: path, field: "(document)", reason: "not valid JSON: \(error)")
        }

        let categoryNames = Dictionary(file.categories.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        let names = options.classFilter ?? file.categories.sorted { $0.id < $1.id }.map(\.name)
        let indexOfName = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let knownImages = Set(file.images.map(\.id))
        var annotationsByImage: [Int: [(position: Int, record: File.AnnotationRecord)]] = [:]
        var validator = AnnotationValidator(options: options)
        for (position, record) in file.annotations.enumerated() {
            guard knownImages.contains(record.image_id) else {
                try validator.skip(.malformedAnnotation(file: path, field: "annotations[\(position)].image_id",
                                                        reason: "image \(record.image_id) is not in 'images'"))
                continue
            }
            annotationsByImage[record.image_id, default: []].append((position, record))
        }

        var items: [DetectionItem] = []
        imageLoop: for image in file.images {
            let imageURL = imageDirectory.appendingPathComponent(image.file_name)
            switch validator.checkImage(imageURL) {
            case let .success(size?) where (size.width, size.height) != (image.width, image.height):
                try validator.skip(.imageSizeMismatch(file: path, annotated: [image.width, image.height], actual: [size.width, size.height]))
                continue imageLoop
            case .success:
                break
            case let .failure(issue):
                try validator.skip(issue)
                continue imageLoop
            }
            var objects: [ObjectAnnotation] = []
            var clipped = 0
            var excluded = 0
            for (position, record) in annotationsByImage[image.id] ?? [] {
                guard let categoryName = categoryNames[record.category_id] else {
                    try validator.skip(.unknownClass(file: path, object: position, name: "category_id \(record.category_id)"))
                    continue imageLoop
                }
                guard record.bbox.count == 4 else {
                    try validator.skip(.malformedAnnotation(file: path, field: "annotations[\(position)].bbox",
                                                            reason: "expected [x, y, width, height], found \(record.bbox.count) numbers"))
                    continue imageLoop
                }
                let box = BoundingBox(x0: record.bbox[0], y0: record.bbox[1],
                                      x1: record.bbox[0] + record.bbox[2], y1: record.bbox[1] + record.bbox[3])
                switch validator.validatedBox(box, file: path, object: position, width: image.width, height: image.height) {
                case let .success(result):
                    guard let classIndex = indexOfName[categoryName] else { excluded += 1; continue }
                    objects.append(ObjectAnnotation(box: result.box, classIndex: classIndex, crowd: (record.iscrowd ?? 0) != 0))
                    if result.clipped { clipped += 1 }
                case let .failure(issue):
                    try validator.skip(issue)
                    continue imageLoop
                }
            }
            let item = DetectionItem(id: String(image.id), imageURL: imageURL, width: image.width, height: image.height, objects: objects)
            validator.accept(item, clippedBoxes: clipped, excludedObjects: excluded)
            items.append(item)
        }
        classNames = names
        loaded = items
        report = validator.report
    }

    private static func fieldPath(_ path: [any CodingKey]) -> String {
        path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }
}
