import Foundation

/// YOLO layout: `images/[<split>/]<stem>.jpg|png` with `labels/[<split>/]<stem>.txt`, one line per
/// object: `class cx cy w h`, all but the class normalised to [0, 1] by the image size.
/// An image without a label file is a background image (no objects), as in the YOLO tools.
public struct YOLODataset: DetectionDataset {
    public let root: URL
    public let split: String?
    public let classNames: [String]
    public let report: LoadingReport
    private let loaded: [DetectionItem]

    public var count: Int { loaded.count }
    public func item(at index: Int) -> DetectionItem { loaded[index] }

    /// - Parameter sourceClassNames: the names of the label file's class ids (id i is name i).
    public init(root: URL, split: String? = nil, sourceClassNames: [String],
                options: DatasetOptions = DatasetOptions()) throws(DatasetIssue) {
        self.root = root
        self.split = split
        let imageDirectory = split.map { root.appendingPathComponent("images/\($0)") } ?? root.appendingPathComponent("images")
        let labelDirectory = split.map { root.appendingPathComponent("labels/\($0)") } ?? root.appendingPathComponent("labels")
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: imageDirectory.path) else {
            throw .missingDirectory(path: imageDirectory.path)
        }
        let imageFiles = files.filter { ImageFormat(fileExtension: ($0 as NSString).pathExtension) != nil }.sorted()
        let names = options.classFilter ?? sourceClassNames
        let indexOfName = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })

        var validator = AnnotationValidator(options: options)
        var items: [DetectionItem] = []
        for file in imageFiles {
            let imageURL = imageDirectory.appendingPathComponent(file)
            let stem = (file as NSString).deletingPathExtension
            let labelURL = labelDirectory.appendingPathComponent("\(stem).txt")
            switch Self.parse(stem: stem, imageURL: imageURL, labelURL: labelURL, sourceClassNames: sourceClassNames,
                              indexOfName: indexOfName, validator: validator) {
            case let .success(entry):
                validator.accept(entry.item, clippedBoxes: entry.clipped, excludedObjects: entry.excluded)
                items.append(entry.item)
            case let .failure(issue):
                try validator.skip(issue)
            }
        }
        classNames = names
        loaded = items
        report = validator.report
    }

    private static func parse(stem: String, imageURL: URL, labelURL: URL, sourceClassNames: [String],
                              indexOfName: [String: Int], validator: AnnotationValidator)
        -> Result<(item: DetectionItem, clipped: Int, excluded: Int), DatasetIssue> {
        // YOLO labels are normalised, so the image size is needed even when headers are not checked.
        var headerOptions = validator.options
        if headerOptions.imageCheck == .existence { headerOptions.imageCheck = .header }
        let size: (width: Int, height: Int)
        switch AnnotationValidator(options: headerOptions).checkImage(imageURL) {
        case let .success(found?): size = found
        case .success(nil): return .failure(.unreadableImage(path: imageURL.path, reason: "no size"))
        case let .failure(issue): return .failure(issue)
        }
        var objects: [ObjectAnnotation] = []
        var clipped = 0
        var excluded = 0
        if let data = FileManager.default.contents(atPath: labelURL.path) {
            let file = labelURL.path
            let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            for (index, line) in lines.enumerated() {
                let fields = line.split(whereSeparator: \.isWhitespace)
                guard fields.count == 5 else {
                    return .failure(.malformedAnnotation(file: file, field: "line \(index + 1)",
                                                         reason: "expected 5 fields 'class cx cy w h', found \(fields.count)"))
                }
                guard let classID = Int(fields[0]) else {
                    return .failure(.malformedAnnotation(file: file, field: "line \(index + 1) class", reason: "'\(fields[0])' is not an integer"))
                }
                guard sourceClassNames.indices.contains(classID) else {
                    return .failure(.unknownClass(file: file, object: index, name: "id \(classID) (\(sourceClassNames.count) classes known)"))
                }
                var values: [Double] = []
                for (position, field) in ["cx", "cy", "w", "h"].enumerated() {
                    guard let value = Double(fields[position + 1]), value.isFinite else {
                        return .failure(.malformedAnnotation(file: file, field: "line \(index + 1) \(field)", reason: "'\(fields[position + 1])' is not a number"))
                    }
                    values.append(value)
                }
                let width = Double(size.width), height = Double(size.height)
                let box = BoundingBox(x0: (values[0] - values[2] / 2) * width, y0: (values[1] - values[3] / 2) * height,
                                      x1: (values[0] + values[2] / 2) * width, y1: (values[1] + values[3] / 2) * height)
                switch validator.validatedBox(box, file: file, object: index, width: size.width, height: size.height) {
                case let .success(result):
                    guard let classIndex = indexOfName[sourceClassNames[classID]] else { excluded += 1; continue }
                    objects.append(ObjectAnnotation(box: result.box, classIndex: classIndex))
                    if result.clipped { clipped += 1 }
                case let .failure(issue):
                    return .failure(issue)
                }
            }
        }
        let item = DetectionItem(id: stem, imageURL: imageURL, width: size.width, height: size.height, objects: objects)
        return .success((item, clipped, excluded))
    }
}
