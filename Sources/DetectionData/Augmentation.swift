import Foundation
import Randomness

/// The similarity transform (uniform scale, then shift) from source-image pixels to the pixels of
/// a resized/padded network input. Detections are mapped back with `toSource`.
public struct ImageTransform: Hashable, Sendable, Codable {
    public var scale: Double
    public var offsetX: Double
    public var offsetY: Double
    /// True when the output was mirrored left-right after scaling (x' = outputWidth - x).
    public var flipped: Bool
    public var outputWidth: Int
    public var outputHeight: Int

    public init(scale: Double, offsetX: Double, offsetY: Double, flipped: Bool = false, outputWidth: Int, outputHeight: Int) {
        self.scale = scale
        self.offsetX = offsetX
        self.offsetY = offsetY
        self.flipped = flipped
        self.outputWidth = outputWidth
        self.outputHeight = outputHeight
    }

    /// Letterbox: the largest scale that fits the whole image, centred, the rest padded.
    public static func letterbox(sourceWidth: Int, sourceHeight: Int, targetWidth: Int, targetHeight: Int) -> ImageTransform {
        let scale = min(Double(targetWidth) / Double(sourceWidth), Double(targetHeight) / Double(sourceHeight))
        return ImageTransform(scale: scale, offsetX: (Double(targetWidth) - Double(sourceWidth) * scale) / 2,
                              offsetY: (Double(targetHeight) - Double(sourceHeight) * scale) / 2,
                              outputWidth: targetWidth, outputHeight: targetHeight)
    }

    /// Source box to output box (unclipped).
    public func toOutput(_ box: BoundingBox) -> BoundingBox {
        let x0 = box.x0 * scale + offsetX, x1 = box.x1 * scale + offsetX
        let y0 = box.y0 * scale + offsetY, y1 = box.y1 * scale + offsetY
        return flipped ? BoundingBox(x0: Double(outputWidth) - x1, y0: y0, x1: Double(outputWidth) - x0, y1: y1)
            : BoundingBox(x0: x0, y0: y0, x1: x1, y1: y1)
    }

    /// Output box (for example a detection on the network input) back to source pixels.
    public func toSource(_ box: BoundingBox) -> BoundingBox {
        let unflipped = flipped ? BoundingBox(x0: Double(outputWidth) - box.x1, y0: box.y0, x1: Double(outputWidth) - box.x0, y1: box.y1) : box
        return BoundingBox(x0: (unflipped.x0 - offsetX) / scale, y0: (unflipped.y0 - offsetY) / scale,
                           x1: (unflipped.x1 - offsetX) / scale, y1: (unflipped.y1 - offsetY) / scale)
    }
}

/// Geometric and photometric image operations. All take explicit parameters; the random choices
/// live in `Augmenter`, which draws them from a seeded generator.
public enum ImageOps {
    /// The grey of letterbox padding (as in the YOLO family of detectors).
    public static let padValue: UInt8 = 114

    /// Renders `transform` of an RGB image with bilinear sampling (pixel centres at +0.5);
    /// output pixels that fall outside the source get `fill`.
    public static func warp(_ image: Image, _ transform: ImageTransform, fill: UInt8 = padValue) -> Image {
        precondition(image.channels == 3, "warp expects RGB")
        let outWidth = transform.outputWidth, outHeight = transform.outputHeight
        var output = [UInt8](repeating: fill, count: outWidth * outHeight * 3)
        let sourceWidth = image.width, sourceHeight = image.height
        guard sourceWidth > 0, sourceHeight > 0 else { return Image(width: outWidth, height: outHeight, pixels: output) }
        // Horizontal sample positions are the same for every row: precompute them.
        var columns: [(x0: Int, x1: Int, weight: Double, outX: Int)] = []
        for u in 0..<outWidth {
            let sx = (Double(u) + 0.5 - transform.offsetX) / transform.scale - 0.5
            guard sx >= -0.5, sx <= Double(sourceWidth) - 0.5 else { continue }
            let clamped = min(max(sx, 0), Double(sourceWidth - 1))
            let left = Int(clamped.rounded(.down))
            let outX = transform.flipped ? outWidth - 1 - u : u
            columns.append((left, min(left + 1, sourceWidth - 1), clamped - Double(left), outX))
        }
        image.pixels.withUnsafeBufferPointer { source in
            output.withUnsafeMutableBufferPointer { destination in
                for v in 0..<outHeight {
                    let sy = (Double(v) + 0.5 - transform.offsetY) / transform.scale - 0.5
                    guard sy >= -0.5, sy <= Double(sourceHeight) - 0.5 else { continue }
                    let clamped = min(max(sy, 0), Double(sourceHeight - 1))
                    let top = Int(clamped.rounded(.down)), bottom = min(top + 1, sourceHeight - 1)
                    let wy = clamped - Double(top)
                    let topRow = top * sourceWidth * 3, bottomRow = bottom * sourceWidth * 3
                    let outRow = v * outWidth * 3
                    for column in columns {
                        for c in 0..<3 {
                            let a = Double(source[topRow + column.x0 * 3 + c]), b = Double(source[topRow + column.x1 * 3 + c])
                            let d = Double(source[bottomRow + column.x0 * 3 + c]), e = Double(source[bottomRow + column.x1 * 3 + c])
                            let upper = a + (b - a) * column.weight, lower = d + (e - d) * column.weight
                            destination[outRow + column.outX * 3 + c] = UInt8((upper + (lower - upper) * wy).rounded())
                        }
                    }
                }
            }
        }
        return Image(width: outWidth, height: outHeight, pixels: output)
    }

    /// Letterboxes to the target size: keeps the aspect ratio and pads with grey 114.
    public static func letterbox(_ image: Image, width: Int, height: Int) -> (image: Image, transform: ImageTransform) {
        let transform = ImageTransform.letterbox(sourceWidth: image.width, sourceHeight: image.height, targetWidth: width, targetHeight: height)
        return (warp(image, transform), transform)
    }

    /// Mirrors an image left-right.
    public static func flippedHorizontally(_ image: Image) -> Image {
        var pixels = image.pixels
        let rowLength = image.width * image.channels
        for y in 0..<image.height {
            for x in 0..<(image.width / 2) {
                for c in 0..<image.channels {
                    pixels.swapAt(y * rowLength + x * image.channels + c, y * rowLength + (image.width - 1 - x) * image.channels + c)
                }
            }
        }
        return Image(width: image.width, height: image.height, channels: image.channels, pixels: pixels)
    }

    /// Brightness (multiplier), contrast (multiplier about the mean grey) and saturation
    /// (blend with each pixel's grey: 0 is greyscale, 1 unchanged) of an RGB image.
    public static func adjustColour(_ image: Image, brightness: Double, contrast: Double, saturation: Double) -> Image {
        precondition(image.channels == 3, "adjustColour expects RGB")
        var pixels = image.pixels
        let count = image.width * image.height
        guard count > 0 else { return image }
        var greySum = 0.0
        for index in 0..<count {
            greySum += 0.299 * Double(pixels[index * 3]) + 0.587 * Double(pixels[index * 3 + 1]) + 0.114 * Double(pixels[index * 3 + 2])
        }
        let meanGrey = greySum / Double(count)
        pixels.withUnsafeMutableBufferPointer { buffer in
            for index in 0..<count {
                let r = Double(buffer[index * 3]), g = Double(buffer[index * 3 + 1]), b = Double(buffer[index * 3 + 2])
                let grey = 0.299 * r + 0.587 * g + 0.114 * b
                for (offset, value) in [r, g, b].enumerated() {
                    let saturated = grey + (value - grey) * saturation
                    let contrasted = meanGrey + (saturated - meanGrey) * contrast
                    buffer[index * 3 + offset] = UInt8(max(0, min(255, (contrasted * brightness).rounded())))
                }
            }
        }
        return Image(width: image.width, height: image.height, pixels: pixels)
    }
}

/// Settings of the training-time augmentation. `nil`-free and Codable so that a trial can record it.
public struct AugmentationConfig: Hashable, Sendable, Codable {
    public var outputWidth: Int
    public var outputHeight: Int
    /// Multiplies the letterbox scale (1...1 keeps the letterbox size).
    public var scaleRange: ClosedRange<Double> = 0.6...1.4
    /// Largest random shift of the scaled image, as a fraction of the output size.
    public var maximumShift = 0.2
    public var flipProbability = 0.5
    /// Brightness and contrast multipliers are drawn from 1 ± these values; saturation likewise.
    public var brightness = 0.3
    public var contrast = 0.3
    public var saturation = 0.5
    /// Boxes narrower or lower than this (pixels, after clipping) are dropped.
    public var minimumBoxSize = 3.0
    /// Boxes with less than this fraction of their area inside the output are dropped.
    public var minimumVisibleFraction = 0.3

    public init(outputWidth: Int, outputHeight: Int) {
        self.outputWidth = outputWidth
        self.outputHeight = outputHeight
    }

    /// No randomness: a plain letterbox (for evaluation).
    public static func evaluation(width: Int, height: Int) -> AugmentationConfig {
        var config = AugmentationConfig(outputWidth: width, outputHeight: height)
        config.scaleRange = 1...1
        config.maximumShift = 0
        config.flipProbability = 0
        config.brightness = 0
        config.contrast = 0
        config.saturation = 0
        return config
    }
}

/// One augmented sample: the network-input image, its boxes in output pixels, the transform
/// back to the source image, and how many boxes fell out.
public struct AugmentedSample: Hashable, Sendable {
    public var image: Image
    public var objects: [ObjectAnnotation]
    public var transform: ImageTransform
    public var droppedObjects: Int
}

/// Applies random scale/shift (a generalised letterbox), flip and colour jitter, drawing every
/// choice from the generator it is given.
public struct Augmenter: Sendable {
    public var config: AugmentationConfig

    public init(config: AugmentationConfig) { self.config = config }

    public func apply(to image: Image, objects: [ObjectAnnotation], using rng: inout SplitMix64) -> AugmentedSample {
        var transform = ImageTransform.letterbox(sourceWidth: image.width, sourceHeight: image.height,
                                                 targetWidth: config.outputWidth, targetHeight: config.outputHeight)
        let factor = rng.uniform(config.scaleRange)
        let shiftX = rng.uniform(-config.maximumShift...config.maximumShift) * Double(config.outputWidth)
        let shiftY = rng.uniform(-config.maximumShift...config.maximumShift) * Double(config.outputHeight)
        // Scale about the output centre, then shift.
        let centreX = Double(config.outputWidth) / 2, centreY = Double(config.outputHeight) / 2
        transform.offsetX = centreX + (transform.offsetX - centreX) * factor + shiftX
        transform.offsetY = centreY + (transform.offsetY - centreY) * factor + shiftY
        transform.scale *= factor
        transform.flipped = rng.uniform(0...1) < config.flipProbability
        var output = ImageOps.warp(image, transform)
        let brightness = 1 + rng.uniform(-config.brightness...config.brightness)
        let contrast = 1 + rng.uniform(-config.contrast...config.contrast)
        let saturation = 1 + rng.uniform(-config.saturation...config.saturation)
        if brightness != 1 || contrast != 1 || saturation != 1 {
            output = ImageOps.adjustColour(output, brightness: brightness, contrast: contrast, saturation: saturation)
        }
        var kept: [ObjectAnnotation] = []
        var dropped = 0
        for object in objects {
            let mapped = transform.toOutput(object.box)
            let clipped = mapped.clipped(width: Double(config.outputWidth), height: Double(config.outputHeight))
            let visible = mapped.area > 0 ? clipped.area / mapped.area : 0
            if clipped.width < config.minimumBoxSize || clipped.height < config.minimumBoxSize || visible < config.minimumVisibleFraction {
                dropped += 1
                continue
            }
            var moved = object
            moved.box = clipped
            kept.append(moved)
        }
        return AugmentedSample(image: output, objects: kept, transform: transform, droppedObjects: dropped)
    }
}
