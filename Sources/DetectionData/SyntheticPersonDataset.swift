import Dispatch
import Foundation
import Randomness

/// Settings of the synthetic person generator. The defaults make a task that a tiny detector can
/// learn to AP@0.5 >= 0.8 in minutes on a laptop CPU: 320x320 images, 1-4 figures 40-200 px tall.
public struct SyntheticDataConfig: Hashable, Sendable, Codable {
    public var imageWidth = 320
    public var imageHeight = 320
    /// Figures per image (each image draws a count uniformly from this range).
    public var figuresPerImage: ClosedRange<Int> = 1...4
    /// Chance that an image has no figure at all (teaches the detector about empty scenes).
    public var emptyImageProbability = 0.05
    /// Height of a figure's box in pixels (pose included); limited to 95% of the image height.
    public var figureHeight: ClosedRange<Double> = 40...200
    /// Figures may overlap (partial occlusion), but at most this fraction of the smaller one's box
    /// may be covered by another, so each figure stays findable. (An IoU limit alone would let a
    /// small figure hide inside a large one.)
    public var maximumOverlap = 0.35
    /// Background distractor shapes per image (rectangles, ellipses, sticks).
    public var distractorsPerImage: ClosedRange<Int> = 2...8
    /// Largest per-pixel sensor noise amplitude (grey levels).
    public var maximumNoise = 16
    public var format: ImageFormat = .jpeg
    public var jpegQuality = 90

    public init() {}

    /// Checks the values; the error names the field.
    public func validate() throws(SyntheticDataError) {
        guard imageWidth >= 32, imageHeight >= 32 else { throw .invalidConfig(field: "imageWidth/imageHeight", reason: "must be at least 32") }
        guard figuresPerImage.lowerBound >= 0 else { throw .invalidConfig(field: "figuresPerImage", reason: "must not be negative") }
        guard figureHeight.lowerBound >= 12 else { throw .invalidConfig(field: "figureHeight", reason: "must be at least 12 pixels") }
        guard figureHeight.lowerBound <= Double(imageHeight) * 0.95 else {
            throw .invalidConfig(field: "figureHeight", reason: "lower bound \(figureHeight.lowerBound) does not fit a \(imageHeight)-pixel image")
        }
        guard (0...1).contains(emptyImageProbability) else { throw .invalidConfig(field: "emptyImageProbability", reason: "must be in [0, 1]") }
        guard (0...1).contains(maximumOverlap) else { throw .invalidConfig(field: "maximumOverlap", reason: "must be in [0, 1]") }
        guard distractorsPerImage.lowerBound >= 0 else { throw .invalidConfig(field: "distractorsPerImage", reason: "must not be negative") }
        guard (0...128).contains(maximumNoise) else { throw .invalidConfig(field: "maximumNoise", reason: "must be in 0...128") }
        guard (1...100).contains(jpegQuality) else { throw .invalidConfig(field: "jpegQuality", reason: "must be in 1...100") }
    }
}

public enum SyntheticDataError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidConfig(field: String, reason: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidConfig(field, reason): "synthetic data setting '\(field)': \(reason)"
        case let .cannotWrite(path, reason): "cannot write \(path): \(reason)"
        }
    }
}

/// Procedurally drawn person-like figures on cluttered backgrounds with exact boxes.
///
/// Each figure is a head (ellipse), torso (ellipse), arms and legs (thick segments in two parts)
/// with hands and feet, in a random pose, size, build and clothing colour. Its box is the extent
/// of the pixels it painted, so it is exact by construction (occluders drawn later do not shrink
/// it). Image `index` of a split depends only on (seed, split, index), so images can be drawn in
/// any order or in parallel and a seed always gives the same pixels.
public enum SyntheticPersonDataset {
    public static let classNames = ["person"]

    public enum Split: String, Sendable, Codable, CaseIterable {
        case train, val

        var streamTag: UInt64 { self == .train ? 0x7472_6169_6E00_0000 : 0x7661_6C00_0000_0000 }
    }

    /// Draws image `index` of `split`. Boxes are in pixels, class 0 ("person").
    public static func render(seed: UInt64, split: Split, index: Int, config: SyntheticDataConfig = SyntheticDataConfig())
        -> (image: Image, objects: [ObjectAnnotation]) {
        var rng = SplitMix64.derived(seed: seed ^ split.streamTag, index: UInt64(index))
        var canvas = Canvas(width: config.imageWidth, height: config.imageHeight)
        drawBackground(on: &canvas, using: &rng)
        let distractors = Int.random(in: config.distractorsPerImage, using: &rng)
        for _ in 0..<distractors { drawDistractor(on: &canvas, maxSize: Double(min(canvas.width, canvas.height)) * 0.35, using: &rng) }

        var objects: [ObjectAnnotation] = []
        let figureCount = rng.uniform(0...1) < config.emptyImageProbability ? 0 : Int.random(in: config.figuresPerImage, using: &rng)
        var placed: [BoundingBox] = []
        let tallest = min(config.figureHeight.upperBound, Double(config.imageHeight) * 0.95)
        for _ in 0..<figureCount {
            // A few attempts to find a spot that does not hide an earlier figure too much.
            for _ in 0..<20 {
                let height = rng.uniform(min(config.figureHeight.lowerBound, tallest)...tallest)
                // Raised arms or a lean change the extent; rescale so the box height is `height`.
                var figure = Figure.random(height: height, using: &rng)
                figure.scale(by: height / figure.estimatedBounds.height)
                let estimate = figure.estimatedBounds
                let freeX = Double(canvas.width) - estimate.width, freeY = Double(canvas.height) - estimate.height
                guard freeX >= 0, freeY >= 0 else { continue }
                let dx = rng.uniform(0...freeX) - estimate.x0, dy = rng.uniform(0...freeY) - estimate.y0
                let placedEstimate = BoundingBox(x0: estimate.x0 + dx, y0: estimate.y0 + dy, x1: estimate.x1 + dx, y1: estimate.y1 + dy)
                guard placed.allSatisfy({
                    $0.intersectionArea(with: placedEstimate) <= config.maximumOverlap * min($0.area, placedEstimate.area)
                }) else { continue }
                canvas.resetExtent()
                figure.draw(on: &canvas, offsetX: dx, offsetY: dy)
                if let extent = canvas.extent {
                    let box = BoundingBox(x0: Double(extent.minX), y0: Double(extent.minY), x1: Double(extent.maxX + 1), y1: Double(extent.maxY + 1))
                    objects.append(ObjectAnnotation(box: box, classIndex: 0))
                    placed.append(placedEstimate)
                }
                break
            }
        }
        // A small occluder in front of the figures now and then (boxes keep the full figure).
        if !objects.isEmpty, rng.uniform(0...1) < 0.3 {
            drawDistractor(on: &canvas, maxSize: Double(min(canvas.width, canvas.height)) * 0.12, using: &rng)
        }
        addNoise(to: &canvas.image, amplitude: Int.random(in: 0...config.maximumNoise, using: &rng), using: &rng)
        return (canvas.image, objects)
    }

    // MARK: background

    private static func drawBackground(on canvas: inout Canvas, using rng: inout SplitMix64) {
        let first = RGB.random(using: &rng), second = RGB.random(using: &rng)
        let width = canvas.width, height = canvas.height
        switch Int.random(in: 0..<4, using: &rng) {
        case 0:  // linear gradient in a random direction
            let angle = rng.uniform(0...(2 * Double.pi))
            let ux = cos(angle), uy = sin(angle)
            let span = abs(ux) * Double(width) + abs(uy) * Double(height)
            let origin = min(0, ux * Double(width)) + min(0, uy * Double(height))
            for y in 0..<height { for x in 0..<width {
                canvas.set(x, y, first.mixed(with: second, (ux * Double(x) + uy * Double(y) - origin) / span))
            } }
        case 1:  // stripes, horizontal, vertical or diagonal
            let period = Int.random(in: 6...40, using: &rng)
            let direction = Int.random(in: 0..<3, using: &rng)
            for y in 0..<height { for x in 0..<width {
                let position = direction == 0 ? y : direction == 1 ? x : x + y
                canvas.set(x, y, (position / period) % 2 == 0 ? first : second)
            } }
        case 2:  // blocks (checkerboard of random size)
            let cell = Int.random(in: 8...64, using: &rng)
            for y in 0..<height { for x in 0..<width {
                canvas.set(x, y, ((x / cell) + (y / cell)) % 2 == 0 ? first : second)
            } }
        default:  // smooth value noise: random colours on a coarse grid, bilinearly interpolated
            let cell = Double(Int.random(in: 24...96, using: &rng))
            let columns = Int(Double(width) / cell) + 2, rows = Int(Double(height) / cell) + 2
            let grid = (0..<(columns * rows)).map { _ in first.mixed(with: second, rng.uniform(0...1)) }
            for y in 0..<height { for x in 0..<width {
                let gx = Double(x) / cell, gy = Double(y) / cell
                let ix = Int(gx), iy = Int(gy), fx = gx - Double(ix), fy = gy - Double(iy)
                let top = grid[iy * columns + ix].mixed(with: grid[iy * columns + ix + 1], fx)
                let bottom = grid[(iy + 1) * columns + ix].mixed(with: grid[(iy + 1) * columns + ix + 1], fx)
                canvas.set(x, y, top.mixed(with: bottom, fy))
            } }
        }
    }

    private static func drawDistractor(on canvas: inout Canvas, maxSize: Double, using rng: inout SplitMix64) {
        let colour = RGB.random(using: &rng)
        let cx = rng.uniform(0...Double(canvas.width)), cy = rng.uniform(0...Double(canvas.height))
        let a = rng.uniform(4...max(5, maxSize)) / 2, b = rng.uniform(4...max(5, maxSize)) / 2
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: canvas.fillRectangle(x0: cx - a, y0: cy - b, x1: cx + a, y1: cy + b, colour: colour)
        case 1: canvas.fillEllipse(cx: cx, cy: cy, rx: a, ry: b, colour: colour)
        default:
            let angle = rng.uniform(0...Double.pi)
            canvas.fillSegment(from: (cx - a * cos(angle), cy - a * sin(angle)), to: (cx + a * cos(angle), cy + a * sin(angle)),
                               thickness: rng.uniform(2...max(3, b / 2)), colour: colour)
        }
    }

    private static func addNoise(to image: inout Image, amplitude: Int, using rng: inout SplitMix64) {
        guard amplitude > 0 else { return }
        image.pixels.withUnsafeMutableBufferPointer { pixels in
            for index in pixels.indices {
                let noisy = Int(pixels[index]) + Int.random(in: -amplitude...amplitude, using: &rng)
                pixels[index] = UInt8(clamping: noisy)
            }
        }
    }
}

/// One stick-and-ellipse figure in local coordinates (origin at the top of the head, y down).
private struct Figure {
    enum Shape {
        case ellipse(cx: Double, cy: Double, rx: Double, ry: Double)
        case segment(ax: Double, ay: Double, bx: Double, by: Double, thickness: Double)
    }

    var parts: [(shape: Shape, colour: RGB)] = []

    static func random(height h: Double, using rng: inout SplitMix64) -> Figure {
        let skinTones = [RGB(r: 241, g: 194, b: 160), RGB(r: 224, g: 172, b: 105), RGB(r: 198, g: 134, b: 66),
                         RGB(r: 141, g: 85, b: 36), RGB(r: 92, g: 56, b: 30)]
        let skin = skinTones[Int.random(in: 0..<skinTones.count, using: &rng)]
        let shirt = RGB.random(using: &rng)
        let trousers = RGB.random(using: &rng).mixed(with: RGB(r: 0, g: 0, b: 0), rng.uniform(0...0.6))
        let build = rng.uniform(0.75...1.3)  // thin to broad: varies the box aspect ratio
        let lean = rng.uniform(-0.12...0.12)

        let headRy = h * 0.065, headRx = headRy * rng.uniform(0.7...0.9)
        let neckY = 2 * headRy
        let shoulderY = neckY + h * 0.035, hipY = h * 0.52
        let shoulderHalf = h * 0.11 * build, hipHalf = h * 0.075 * build
        let armThickness = h * 0.045 * build, legThickness = h * 0.06 * build
        var figure = Figure()
        // Lean rotates every point about the hip centre.
        func point(_ x: Double, _ y: Double) -> (Double, Double) {
            let dy = y - hipY
            return (x * cos(lean) - dy * sin(lean), hipY + x * sin(lean) + dy * cos(lean))
        }
        func limb(from start: (Double, Double), angles: (Double, Double), lengths: (Double, Double), thickness: Double, colour: RGB) -> (Double, Double) {
            // Angles are measured from straight down; positive turns towards +x.
            let joint = (start.0 + sin(angles.0) * lengths.0, start.1 + cos(angles.0) * lengths.0)
            let end = (joint.0 + sin(angles.0 + angles.1) * lengths.1, joint.1 + cos(angles.0 + angles.1) * lengths.1)
            figure.parts.append((.segment(ax: start.0, ay: start.1, bx: joint.0, by: joint.1, thickness: thickness), colour))
            figure.parts.append((.segment(ax: joint.0, ay: joint.1, bx: end.0, by: end.1, thickness: thickness * 0.9), colour))
            return end
        }
        // Legs first so the torso covers their tops.
        for side in [-1.0, 1.0] {
            let hip = point(side * hipHalf * 0.55, hipY)
            let thigh = side * rng.uniform(-0.1...0.45) + lean
            let knee = -side * rng.uniform(0...0.5) * (thigh * side > 0.2 ? 1 : 0.3)
            let foot = limb(from: hip, angles: (thigh, knee), lengths: (h * 0.245, h * 0.235), thickness: legThickness, colour: trousers)
            let toward = Bool.random(using: &rng) ? 1.0 : -1.0
            figure.parts.append((.segment(ax: foot.0, ay: foot.1, bx: foot.0 + toward * h * 0.05, by: foot.1, thickness: legThickness * 0.7),
                                 trousers.mixed(with: RGB(r: 20, g: 20, b: 20), 0.7)))
        }
        let torsoCentre = point(0, (shoulderY + hipY) / 2)
        figure.parts.append((.ellipse(cx: torsoCentre.0, cy: torsoCentre.1, rx: shoulderHalf, ry: (hipY - shoulderY) / 2 + h * 0.03), shirt))
        for side in [-1.0, 1.0] {
            let shoulder = point(side * shoulderHalf * 0.8, shoulderY + armThickness / 2)
            // From hanging down (0) to raised sideways/up (about 2.6 rad), elbow bent either way.
            let upper = side * rng.uniform(-0.15...2.6) + lean
            let fore = side * rng.uniform(-1.3...1.3)
            let hand = limb(from: shoulder, angles: (upper, fore), lengths: (h * 0.17, h * 0.155), thickness: armThickness, colour: shirt)
            figure.parts.append((.ellipse(cx: hand.0, cy: hand.1, rx: armThickness * 0.6, ry: armThickness * 0.7), skin))
        }
        let neck = point(0, neckY)
        let shoulderTop = point(0, shoulderY)
        figure.parts.append((.segment(ax: neck.0, ay: neck.1, bx: shoulderTop.0, by: shoulderTop.1, thickness: headRx * 0.8), skin))
        let head = point(0, headRy)
        figure.parts.append((.ellipse(cx: head.0, cy: head.1, rx: headRx, ry: headRy), skin))
        return figure
    }

    mutating func scale(by factor: Double) {
        parts = parts.map { part in
            switch part.shape {
            case let .ellipse(cx, cy, rx, ry):
                (.ellipse(cx: cx * factor, cy: cy * factor, rx: rx * factor, ry: ry * factor), part.colour)
            case let .segment(ax, ay, bx, by, thickness):
                (.segment(ax: ax * factor, ay: ay * factor, bx: bx * factor, by: by * factor, thickness: thickness * factor), part.colour)
            }
        }
    }

    /// The union of the parts' analytic bounds: close to (never smaller than) the painted extent.
    var estimatedBounds: BoundingBox {
        var box = BoundingBox(x0: .infinity, y0: .infinity, x1: -.infinity, y1: -.infinity)
        for part in parts {
            let bounds: (Double, Double, Double, Double)
            switch part.shape {
            case let .ellipse(cx, cy, rx, ry): bounds = (cx - rx, cy - ry, cx + rx, cy + ry)
            case let .segment(ax, ay, bx, by, thickness):
                let r = thickness / 2
                bounds = (min(ax, bx) - r, min(ay, by) - r, max(ax, bx) + r, max(ay, by) + r)
            }
            box = BoundingBox(x0: min(box.x0, bounds.0), y0: min(box.y0, bounds.1), x1: max(box.x1, bounds.2), y1: max(box.y1, bounds.3))
        }
        return box
    }

    func draw(on canvas: inout Canvas, offsetX dx: Double, offsetY dy: Double) {
        for part in parts {
            switch part.shape {
            case let .ellipse(cx, cy, rx, ry):
                canvas.fillEllipse(cx: cx + dx, cy: cy + dy, rx: rx, ry: ry, colour: part.colour)
            case let .segment(ax, ay, bx, by, thickness):
                canvas.fillSegment(from: (ax + dx, ay + dy), to: (bx + dx, by + dy), thickness: thickness, colour: part.colour)
            }
        }
    }
}

/// Writes a synthetic dataset in the Pascal VOC layout that `VOCDataset` reads.
public struct SyntheticDataWriter: Sendable {
    public var config: SyntheticDataConfig

    public init(config: SyntheticDataConfig = SyntheticDataConfig()) { self.config = config }

    public struct Summary: Hashable, Sendable, Codable {
        public var trainImages: Int
        public var valImages: Int
        public var trainObjects: Int
        public var valObjects: Int
    }

    /// Writes `JPEGImages/`, `Annotations/`, `ImageSets/Main/{train,val}.txt` and `synthetic.json`
    /// (the seed and settings, for provenance) under `directory`. Images are drawn in parallel;
    /// the bytes depend only on the seed and settings.
    @discardableResult
    public func write(to directory: URL, seed: UInt64, trainCount: Int, valCount: Int) throws(SyntheticDataError) -> Summary {
        try config.validate()
        guard trainCount >= 0, valCount >= 0 else { throw .invalidConfig(field: "train/val", reason: "counts must not be negative") }
        let fileManager = FileManager.default
        for sub in ["JPEGImages", "Annotations", "ImageSets/Main"] {
            let url = directory.appendingPathComponent(sub)
            do { try fileManager.createDirectory(at: url, withIntermediateDirectories: true) } catch {
                throw .cannotWrite(path: url.path, reason: "\(error)")
            }
        }
        let jobs = (0..<trainCount).map { (SyntheticPersonDataset.Split.train, $0) } + (0..<valCount).map { (SyntheticPersonDataset.Split.val, $0) }
        let results = ResultSlots<Result<Int, SyntheticDataError>>(count: jobs.count)
        let config = config
        DispatchQueue.concurrentPerform(iterations: jobs.count) { job in
            let (split, index) = jobs[job]
            results.set(job, Self.writeImage(config: config, seed: seed, split: split, index: index, directory: directory))
        }
        var objectCounts = [0, 0]
        for (job, result) in results.values.enumerated() {
            switch result {
            case let .success(objects)?: objectCounts[jobs[job].0 == .train ? 0 : 1] += objects
            case let .failure(error)?: throw error
            case nil: throw .cannotWrite(path: directory.path, reason: "image job \(job) did not run")
            }
        }
        try writeText((0..<trainCount).map { Self.id(.train, $0) }.joined(separator: "\n") + "\n",
                      to: directory.appendingPathComponent("ImageSets/Main/train.txt"))
        try writeText((0..<valCount).map { Self.id(.val, $0) }.joined(separator: "\n") + "\n",
                      to: directory.appendingPathComponent("ImageSets/Main/val.txt"))
        struct Provenance: Encodable {
            var generator = "edgenas SyntheticPersonDataset v1"
            var seed: UInt64
            var config: SyntheticDataConfig
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let metadata = (try? encoder.encode(Provenance(seed: seed, config: config))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        try writeText(metadata + "\n", to: directory.appendingPathComponent("synthetic.json"))
        return Summary(trainImages: trainCount, valImages: valCount, trainObjects: objectCounts[0], valObjects: objectCounts[1])
    }

    static func id(_ split: SyntheticPersonDataset.Split, _ index: Int) -> String {
        let digits = String(index)
        return "\(split.rawValue)_" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    private static func writeImage(config: SyntheticDataConfig, seed: UInt64, split: SyntheticPersonDataset.Split,
                                   index: Int, directory: URL) -> Result<Int, SyntheticDataError> {
        let (image, objects) = SyntheticPersonDataset.render(seed: seed, split: split, index: index, config: config)
        let id = id(split, index)
        let fileName = "\(id).\(config.format == .jpeg ? "jpg" : "png")"
        let imageURL = directory.appendingPathComponent("JPEGImages/\(fileName)")
        do {
            try ImageCodec.write(image, to: imageURL, format: config.format, jpegQuality: config.jpegQuality)
        } catch {
            return .failure(.cannotWrite(path: imageURL.path, reason: error.description))
        }
        let xml = VOCWriter.annotationXML(filename: fileName, width: image.width, height: image.height,
                                          objects: objects, classNames: SyntheticPersonDataset.classNames)
        let xmlURL = directory.appendingPathComponent("Annotations/\(id).xml")
        do { try Data(xml.utf8).write(to: xmlURL) } catch { return .failure(.cannotWrite(path: xmlURL.path, reason: "\(error)")) }
        return .success(objects.count)
    }

    private func writeText(_ text: String, to url: URL) throws(SyntheticDataError) {
        do { try Data(text.utf8).write(to: url) } catch { throw .cannotWrite(path: url.path, reason: "\(error)") }
    }
}

/// Fixed-size result storage that parallel workers fill by index (each slot written once).
final class ResultSlots<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Value?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Value) {
        lock.lock()
        slots[index] = value
        lock.unlock()
    }

    var values: [Value?] {
        lock.lock()
        defer { lock.unlock() }
        return slots
    }
}
