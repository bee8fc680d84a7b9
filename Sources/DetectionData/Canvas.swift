/// Rasterisation primitives on an RGB `Image`, used by the synthetic generator. Shapes are drawn
/// without anti-aliasing so that the set of touched pixels (and so a figure's box) is exact.
import Randomness
struct Canvas {
    var image: Image
    /// Bounds of the pixels painted since the last `resetExtent`, as [minX, minY, maxX, maxY].
    private(set) var extent: (minX: Int, minY: Int, maxX: Int, maxY: Int)?

    init(width: Int, height: Int) {
        image = Image(width: width, height: height, fill: [0, 0, 0])
    }

    var width: Int { image.width }
    var height: Int { image.height }

    mutating func resetExtent() { extent = nil }

    @inline(__always)
    mutating func set(_ x: Int, _ y: Int, _ colour: RGB) {
        let offset = (y * image.width + x) * 3
        image.pixels[offset] = colour.r
        image.pixels[offset + 1] = colour.g
        image.pixels[offset + 2] = colour.b
    }

    /// Records that a row span [x0, x1] of row y was painted.
    private mutating func track(y: Int, x0: Int, x1: Int) {
        if let current = extent {
            extent = (min(current.minX, x0), min(current.minY, y), max(current.maxX, x1), max(current.maxY, y))
        } else {
            extent = (x0, y, x1, y)
        }
    }

    /// Paints every pixel whose centre satisfies `inside`, scanning the clipped bounding box.
    private mutating func fill(bounds: (x0: Double, y0: Double, x1: Double, y1: Double), colour: RGB,
                               inside: (Double, Double) -> Bool) {
        let xStart = max(0, Int(bounds.x0.rounded(.down))), xEnd = min(width - 1, Int(bounds.x1.rounded(.up)))
        let yStart = max(0, Int(bounds.y0.rounded(.down))), yEnd = min(height - 1, Int(bounds.y1.rounded(.up)))
        guard xStart <= xEnd, yStart <= yEnd else { return }
        for y in yStart...yEnd {
            var rowMin = Int.max, rowMax = Int.min
            let cy = Double(y) + 0.5
            for x in xStart...xEnd where inside(Double(x) + 0.5, cy) {
                set(x, y, colour)
                rowMin = min(rowMin, x)
                rowMax = max(rowMax, x)
            }
            if rowMin <= rowMax { track(y: y, x0: rowMin, x1: rowMax) }
        }
    }

    /// An axis-aligned ellipse with centre (cx, cy) and radii (rx, ry).
    mutating func fillEllipse(cx: Double, cy: Double, rx: Double, ry: Double, colour: RGB) {
        fill(bounds: (cx - rx, cy - ry, cx + rx, cy + ry), colour: colour) { x, y in
            let dx = (x - cx) / rx, dy = (y - cy) / ry
            return dx * dx + dy * dy <= 1
        }
    }

    /// A thick segment with round caps (a capsule): all points within `thickness / 2` of it.
    mutating func fillSegment(from a: (x: Double, y: Double), to b: (x: Double, y: Double), thickness: Double, colour: RGB) {
        let radius = thickness / 2
        let dx = b.x - a.x, dy = b.y - a.y
        let lengthSquared = max(dx * dx + dy * dy, 1e-12)
        fill(bounds: (min(a.x, b.x) - radius, min(a.y, b.y) - radius, max(a.x, b.x) + radius, max(a.y, b.y) + radius),
             colour: colour) { x, y in
            let t = min(1, max(0, ((x - a.x) * dx + (y - a.y) * dy) / lengthSquared))
            let px = a.x + t * dx - x, py = a.y + t * dy - y
            return px * px + py * py <= radius * radius
        }
    }

    mutating func fillRectangle(x0: Double, y0: Double, x1: Double, y1: Double, colour: RGB) {
        fill(bounds: (x0, y0, x1, y1), colour: colour) { x, y in x >= x0 && x <= x1 && y >= y0 && y <= y1 }
    }
}

struct RGB: Hashable, Sendable {
    var r: UInt8
    var g: UInt8
    var b: UInt8

    static func random(using rng: inout SplitMix64) -> RGB {
        RGB(r: UInt8.random(in: 0...255, using: &rng), g: UInt8.random(in: 0...255, using: &rng), b: UInt8.random(in: 0...255, using: &rng))
    }

    /// Linear blend: t = 0 gives self, t = 1 gives other.
    func mixed(with other: RGB, _ t: Double) -> RGB {
        func channel(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8(max(0, min(255, (Double(a) * (1 - t) + Double(b) * t).rounded()))) }
        return RGB(r: channel(r, other.r), g: channel(g, other.g), b: channel(b, other.b))
    }
}
