import CImageCodecs
import Foundation

/// An 8-bit image stored row-major, pixel-interleaved (HWC). Decoded images are always RGB
/// (channels == 3): grayscale, palette, CMYK and RGBA inputs are converted on load.
public struct Image: Hashable, Sendable, Codable {
    public var width: Int
    public var height: Int
    public var channels: Int
    /// width * height * channels bytes, row after row.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, channels: Int = 3, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && channels > 0, "image dimensions must be non-negative")
        precondition(pixels.count == width * height * channels, "pixel buffer does not match \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image filled with one colour (one value per channel).
    public init(width: Int, height: Int, fill: [UInt8]) {
        var pixels = [UInt8](repeating: 0, count: width * height * fill.count)
        if !fill.allSatisfy({ $0 == 0 }) {
            for index in 0..<(width * height) {
                for channel in 0..<fill.count { pixels[index * fill.count + channel] = fill[channel] }
            }
        }
        self.init(width: width, height: height, channels: fill.count, pixels: pixels)
    }
}

/// Image file formats the codecs understand.
public enum ImageFormat: String, Codable, Hashable, Sendable, CaseIterable {
    case jpeg, png

    /// Recognises the format from the first bytes (magic numbers), not the file name.
    public static func sniff(_ data: Data) -> ImageFormat? {
        if data.count >= 3, data[data.startIndex] == 0xFF, data[data.startIndex + 1] == 0xD8, data[data.startIndex + 2] == 0xFF {
            return .jpeg
        }
        let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if data.count >= 8, Array(data.prefix(8)) == pngSignature { return .png }
        return nil
    }

    /// The format a file extension names (jpg, jpeg, png; any case).
    public init?(fileExtension: String) {
        switch fileExtension.lowercased() {
        case "jpg", "jpeg": self = .jpeg
        case "png": self = .png
        default: return nil
        }
    }
}

public enum ImageCodecError: Error, Hashable, Sendable, CustomStringConvertible {
    case unreadableFile(path: String, reason: String)
    case unknownFormat(path: String)
    case decodingFailed(path: String, format: ImageFormat, reason: String)
    case encodingFailed(format: ImageFormat, reason: String)
    case unwritableFile(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadableFile(path, reason): "cannot read image file \(path): \(reason)"
        case let .unknownFormat(path): "image file \(path) is neither JPEG nor PNG (magic bytes not recognised)"
        case let .decodingFailed(path, format, reason): "cannot decode \(format.rawValue.uppercased()) image \(path): \(reason)"
        case let .encodingFailed(format, reason): "cannot encode \(format.rawValue.uppercased()) image: \(reason)"
        case let .unwritableFile(path, reason): "cannot write image file \(path): \(reason)"
        }
    }
}

/// Size and channel count read from an image header without decoding the pixels.
public struct ImageHeader: Hashable, Sendable, Codable {
    public var format: ImageFormat
    public var width: Int
    public var height: Int
    /// Channels stored in the file (1 for grayscale, 3 for RGB, 4 for CMYK/RGBA...).
    public var storedChannels: Int
}

/// JPEG (libjpeg-turbo) and PNG (libpng) decoding and encoding. Every library error comes back as
/// an `ImageCodecError`; the C layer (CImageCodecs) keeps the libraries from calling exit().
public enum ImageCodec {
    private static let errorCapacity = 512

    /// Decodes JPEG or PNG bytes (format from the magic bytes) to RGB. `path` only labels errors.
    public static func decode(_ data: Data, path: String = "<memory>") throws(ImageCodecError) -> Image {
        guard let format = ImageFormat.sniff(data) else { throw .unknownFormat(path: path) }
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0
        var height: Int32 = 0
        var message = [CChar](repeating: 0, count: errorCapacity)
        let status = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Int32 in
            let bytes = raw.bindMemory(to: UInt8.self).baseAddress
            switch format {
            case .jpeg: return ic_decode_jpeg(bytes, raw.count, &pixels, &width, &height, &message, errorCapacity)
            case .png: return ic_decode_png(bytes, raw.count, &pixels, &width, &height, &message, errorCapacity)
            }
        }
        guard status == 0, let pixels else {
            throw .decodingFailed(path: path, format: format, reason: cMessage(message))
        }
        defer { ic_free(pixels) }
        let count = Int(width) * Int(height) * 3
        return Image(width: Int(width), height: Int(height), channels: 3,
                     pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
    }

    /// Reads and decodes an image file.
    public static func decode(contentsOf url: URL) throws(ImageCodecError) -> Image {
        try decode(readFile(url), path: url.path)
    }

    /// Reads only the header: format, size and stored channel count.
    public static func header(of data: Data, path: String = "<memory>") throws(ImageCodecError) -> ImageHeader {
        guard let format = ImageFormat.sniff(data) else { throw .unknownFormat(path: path) }
        var width: Int32 = 0
        var height: Int32 = 0
        var components: Int32 = 0
        var message = [CChar](repeating: 0, count: errorCapacity)
        let status = data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Int32 in
            let bytes = raw.bindMemory(to: UInt8.self).baseAddress
            switch format {
            case .jpeg: return ic_probe_jpeg(bytes, raw.count, &width, &height, &components, &message, errorCapacity)
            case .png: return ic_probe_png(bytes, raw.count, &width, &height, &components, &message, errorCapacity)
            }
        }
        guard status == 0 else { throw .decodingFailed(path: path, format: format, reason: cMessage(message)) }
        return ImageHeader(format: format, width: Int(width), height: Int(height), storedChannels: Int(components))
    }

    public static func header(contentsOf url: URL) throws(ImageCodecError) -> ImageHeader {
        try header(of: readFile(url), path: url.path)
    }

    /// Encodes an image with 1 or 3 channels as a JPEG of the given quality (1...100).
    public static func encodeJPEG(_ image: Image, quality: Int = 90) throws(ImageCodecError) -> Data {
        guard image.channels == 1 || image.channels == 3 else {
            throw .encodingFailed(format: .jpeg, reason: "JPEG needs 1 or 3 channels, image has \(image.channels)")
        }
        let clampedQuality = Int32(min(max(quality, 1), 100))
        return try encode(format: .jpeg) { output, size, message in
            image.pixels.withUnsafeBufferPointer {
                ic_encode_jpeg($0.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                               clampedQuality, output, size, message, errorCapacity)
            }
        }
    }

    /// Encodes an image with 1, 3 or 4 channels as PNG (lossless).
    public static func encodePNG(_ image: Image) throws(ImageCodecError) -> Data {
        try encode(format: .png) { output, size, message in
            image.pixels.withUnsafeBufferPointer {
                ic_encode_png($0.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                              output, size, message, errorCapacity)
            }
        }
    }

    /// Encodes in `format` and writes the bytes to `url`.
    public static func write(_ image: Image, to url: URL, format: ImageFormat, jpegQuality: Int = 90) throws(ImageCodecError) {
        let data = try format == .jpeg ? encodeJPEG(image, quality: jpegQuality) : encodePNG(image)
        do { try data.write(to: url) } catch { throw .unwritableFile(path: url.path, reason: "\(error)") }
    }

    private static func encode(
        format: ImageFormat,
        _ body: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>, UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>) -> Int32
    ) throws(ImageCodecError) -> Data {
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: errorCapacity)
        let status = message.withUnsafeMutableBufferPointer { body(&output, &size, $0.baseAddress!) }
        guard status == 0, let output else {
            throw .encodingFailed(format: format, reason: cMessage(message))
        }
        defer { ic_free(output) }
        return Data(bytes: output, count: size)
    }

    private static func readFile(_ url: URL) throws(ImageCodecError) -> Data {
        do { return try Data(contentsOf: url) } catch {
            throw .unreadableFile(path: url.path, reason: (error as NSError).localizedDescription)
        }
    }
}

/// The text of a NUL-terminated message buffer filled by the C layer.
private func cMessage(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
