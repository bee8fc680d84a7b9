import Foundation

/// Pascal VOC layout: `JPEGImages/<id>.jpg`, `Annotations/<id>.xml`, `ImageSets/Main/<split>.txt`.
///
/// VOC boxes are 1-based inclusive integer pixels; they become continuous coordinates with
/// x0 = xmin - 1, x1 = xmax (same for y), so a box's width is xmax - xmin + 1 pixels.
public struct VOCDataset: DetectionDataset {
    public let root: URL
    public let split: String
    public let classNames: [String]
    public let report: LoadingReport
    private let loaded: [DetectionItem]

    public var count: Int { loaded.count }
    public func item(at index: Int) -> DetectionItem { loaded[index] }

    public init(root: URL, split: String, options: DatasetOptions = DatasetOptions()) throws(DatasetIssue) {
        self.root = root
        self.split = split
        let splitFile = root.appendingPathComponent("ImageSets/Main/\(split).txt")
        guard FileManager.default.fileExists(atPath: root.path) else { throw .missingDirectory(path: root.path) }
        guard let listing = try? String(contentsOf: splitFile, encoding: .utf8) else {
            throw .missingSplitFile(path: splitFile.path)
        }
        // A split line is "<id>" or, in per-class files, "<id> <flag>"; the id is the first token.
        let ids = listing.split(whereSeparator: \.isNewline)
            .compactMap { $0.split(whereSeparator: \.isWhitespace).first.map(String.init) }

        var validator = AnnotationValidator(options: options)
        var parsed: [(item: DetectionItem, names: [String], clipped: Int)] = []
        for id in ids {
            switch Self.parse(id: id, root: root, validator: validator) {
            case let .success(entry): parsed.append(entry)
            case let .failure(issue): try validator.skip(issue)
            }
        }
        // Without a filter the classes are every name seen, sorted so the indices do not depend
        // on file order.
        let names = options.classFilter ?? Array(Set(parsed.flatMap(\.names))).sorted()
        let indexOfName = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        var items: [DetectionItem] = []
        for entry in parsed {
            var item = entry.item
            var excluded = 0
            item.objects = zip(entry.names, entry.item.objects).compactMap { name, object in
                guard let index = indexOfName[name] else { excluded += 1; return nil }
                var kept = object
                kept.classIndex = index
                return kept
            }
            validator.accept(item, clippedBoxes: entry.clipped, excludedObjects: excluded)
            items.append(item)
        }
        classNames = names
        loaded = items
        report = validator.report
    }

    /// Reads one annotation file; class indices are filled in by the caller.
    private static func parse(id: String, root: URL, validator: AnnotationValidator)
        -> Result<(item: DetectionItem, names: [String], clipped: Int), DatasetIssue> {
        let annotationURL = root.appendingPathComponent("Annotations/\(id).xml")
        let file = annotationURL.path
        guard let data = FileManager.default.contents(atPath: file) else { return .failure(.missingAnnotation(path: file)) }
        let document: XMLNode
        switch XMLNode.parse(data) {
        case let .success(node): document = node
        case let .failure(failure): return .failure(.malformedAnnotation(file: file, field: "annotation", reason: failure.message))
        }
        guard document.name == "annotation" else {
            return .failure(.malformedAnnotation(file: file, field: "annotation", reason: "root element is <\(document.name)>, expected <annotation>"))
        }
        let imageURL = findImage(directory: root.appendingPathComponent("JPEGImages"), stem: id)
            ?? root.appendingPathComponent("JPEGImages/\(id).jpg")
        let actualSize: (width: Int, height: Int)?
        switch validator.checkImage(imageURL) {
        case let .success(size): actualSize = size
        case let .failure(issue): return .failure(issue)
        }
        func integer(_ node: XMLNode?, _ field: String) -> Result<Int, DatasetIssue> {
            guard let text = node?.trimmedText, !text.isEmpty else {
                return .failure(.malformedAnnotation(file: file, field: field, reason: "missing"))
            }
            guard let value = Int(text) else {
                return .failure(.malformedAnnotation(file: file, field: field, reason: "'\(text)' is not an integer"))
            }
            return .success(value)
        }
        // VOC size may be missing or zero in some exports; then the image header decides.
        let size = document.child("size")
        let annotatedWidth = try? integer(size?.child("width"), "size/width").get()
        let annotatedHeight = try? integer(size?.child("height"), "size/height").get()
        var width = annotatedWidth ?? 0
        var height = annotatedHeight ?? 0
        if let actualSize {
            if width > 0, height > 0, (width, height) != (actualSize.width, actualSize.height) {
                return .failure(.imageSizeMismatch(file: file, annotated: [width, height], actual: [actualSize.width, actualSize.height]))
            }
            (width, height) = actualSize
        }
        guard width > 0, height > 0 else {
            return .failure(.malformedAnnotation(file: file, field: "size", reason: "width and height must be positive integers (and image headers were not read)"))
        }

        var objects: [ObjectAnnotation] = []
        var names: [String] = []
        var clipped = 0
        for (index, object) in document.children(named: "object").enumerated() {
            guard let name = object.child("name")?.trimmedText, !name.isEmpty else {
                return .failure(.malformedAnnotation(file: file, field: "object[\(index)]/name", reason: "missing"))
            }
            guard let bndbox = object.child("bndbox") else {
                return .failure(.malformedAnnotation(file: file, field: "object[\(index)]/bndbox", reason: "missing"))
            }
            var coordinates: [Double] = []
            for field in ["xmin", "ymin", "xmax", "ymax"] {
                guard let text = bndbox.child(field)?.trimmedText, !text.isEmpty else {
                    return .failure(.malformedAnnotation(file: file, field: "object[\(index)]/bndbox/\(field)", reason: "missing"))
                }
                guard let value = Double(text), value.isFinite else {
                    return .failure(.malformedAnnotation(file: file, field: "object[\(index)]/bndbox/\(field)", reason: "'\(text)' is not a number"))
                }
                coordinates.append(value)
            }
            let difficultText = object.child("difficult")?.trimmedText ?? "0"
            guard let difficultValue = Int(difficultText), difficultValue == 0 || difficultValue == 1 else {
                return .failure(.malformedAnnotation(file: file, field: "object[\(index)]/difficult", reason: "'\(difficultText)' is not 0 or 1"))
            }
            let box = BoundingBox(x0: coordinates[0] - 1, y0: coordinates[1] - 1, x1: coordinates[2], y1: coordinates[3])
            switch validator.validatedBox(box, file: file, object: index, width: width, height: height) {
            case let .success(result):
                objects.append(ObjectAnnotation(box: result.box, classIndex: -1, difficult: difficultValue == 1))
                names.append(name)
                if result.clipped { clipped += 1 }
            case let .failure(issue):
                return .failure(issue)
            }
        }
        let item = DetectionItem(id: id, imageURL: imageURL, width: width, height: height, objects: objects)
        return .success((item, names, clipped))
    }
}

/// Writes annotations in the Pascal VOC XML format (the inverse of `VOCDataset`'s reading).
public enum VOCWriter {
    /// The XML for one image. Boxes must lie on integer pixel boundaries to round-trip exactly;
    /// other values are rounded to the nearest pixel.
    public static func annotationXML(filename: String, width: Int, height: Int, depth: Int = 3,
                                     objects: [ObjectAnnotation], classNames: [String]) -> String {
        var xml = """
        <annotation>
          <folder>JPEGImages</folder>
          <filename>\(escape(filename))</filename>
          <size>
            <width>\(width)</width>
            <height>\(height)</height>
            <depth>\(depth)</depth>
          </size>
          <segmented>0</segmented>

        """
        for object in objects {
            let name = classNames.indices.contains(object.classIndex) ? classNames[object.classIndex] : "class\(object.classIndex)"
            xml += """
              <object>
                <name>\(escape(name))</name>
                <difficult>\(object.difficult ? 1 : 0)</difficult>
                <bndbox>
                  <xmin>\(Int((object.box.x0).rounded()) + 1)</xmin>
                  <ymin>\(Int((object.box.y0).rounded()) + 1)</ymin>
                  <xmax>\(Int(object.box.x1.rounded()))</xmax>
                  <ymax>\(Int(object.box.y1.rounded()))</ymax>
                </bndbox>
              </object>

            """
        }
        return xml + "</annotation>\n"
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
