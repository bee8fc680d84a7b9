import Foundation
import Testing
@testable import DetectionData

@Suite struct ImageCodecTests {
    @Test func pngRoundTripIsLossless() throws {
        let image = patternImage(width: 37, height: 23)
        let data = try ImageCodec.encodePNG(image)
        #expect(ImageFormat.sniff(data) == .png)
        let decoded = try ImageCodec.decode(data)
        #expect(decoded == image)
        let header = try ImageCodec.header(of: data)
        #expect(header == ImageHeader(format: .png, width: 37, height: 23, storedChannels: 3))
    }

    @Test func jpegRoundTripIsClose() throws {
        // A smooth image so that JPEG at quality 95 stays within a few grey levels.
        var pixels = [UInt8](repeating: 0, count: 64 * 48 * 3)
        for y in 0..<48 { for x in 0..<64 { for c in 0..<3 { pixels[(y * 64 + x) * 3 + c] = UInt8(x * 2 + y + c * 30) } } }
        let image = Image(width: 64, height: 48, pixels: pixels)
        let data = try ImageCodec.encodeJPEG(image, quality: 95)
        #expect(ImageFormat.sniff(data) == .jpeg)
        let decoded = try ImageCodec.decode(data)
        #expect(decoded.width == 64 && decoded.height == 48 && decoded.channels == 3)
        let maxError = zip(decoded.pixels, image.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(maxError <= 6)
    }

    @Test func grayscaleAndRGBAInputsBecomeRGB() throws {
        let gray = patternImage(width: 10, height: 8, channels: 1)
        for data in [try ImageCodec.encodePNG(gray), try ImageCodec.encodeJPEG(gray, quality: 100)] {
            let decoded = try ImageCodec.decode(data)
            #expect(decoded.channels == 3)
            for index in 0..<(10 * 8) {
                let r = decoded.pixels[index * 3]
                #expect(decoded.pixels[index * 3 + 1] == r && decoded.pixels[index * 3 + 2] == r)
                #expect(abs(Int(r) - Int(gray.pixels[index])) <= 2)
            }
        }
        // Opaque RGBA keeps its colour; fully transparent pixels are composited over black.
        var rgba = [UInt8](repeating: 0, count: 2 * 1 * 4)
        rgba.replaceSubrange(0..<4, with: [200, 100, 50, 255])
        rgba.replaceSubrange(4..<8, with: [200, 100, 50, 0])
        let decoded = try ImageCodec.decode(ImageCodec.encodePNG(Image(width: 2, height: 1, channels: 4, pixels: rgba)))
        #expect(decoded.pixels == [200, 100, 50, 0, 0, 0])
        let header = try ImageCodec.header(of: ImageCodec.encodePNG(gray))
        #expect(header.storedChannels == 1)
    }

    @Test func corruptFilesThrowInsteadOfExiting() throws {
        let jpeg = try ImageCodec.encodeJPEG(patternImage(width: 64, height: 64), quality: 90)
        // Truncated in the middle of the entropy-coded data: libjpeg only warns, we fail.
        #expect(throws: ImageCodecError.self) { try ImageCodec.decode(jpeg.prefix(jpeg.count / 2), path: "half.jpg") }
        // Only a JPEG signature: a fatal libjpeg error that would call exit() by default.
        do {
            _ = try ImageCodec.decode(Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), path: "stub.jpg")
            Issue.record("a 6-byte JPEG decoded")
        } catch {
            guard case let .decodingFailed(path, format, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(path == "stub.jpg" && format == .jpeg)
        }
        let png = try ImageCodec.encodePNG(patternImage(width: 16, height: 16))
        var damaged = png
        damaged[damaged.count / 2] ^= 0xFF  // breaks a CRC
        #expect(throws: ImageCodecError.self) { try ImageCodec.decode(damaged, path: "bad.png") }
        #expect(throws: ImageCodecError.self) { try ImageCodec.decode(png.prefix(40), path: "short.png") }
        #expect(throws: ImageCodecError.unknownFormat(path: "x.gif")) { try ImageCodec.decode(Data("GIF89a".utf8), path: "x.gif") }
        let missing = URL(fileURLWithPath: "/nonexistent/image.jpg")
        #expect(throws: ImageCodecError.self) { try ImageCodec.decode(contentsOf: missing) }
    }

    @Test func benignJPEGWarningsDoNotRejectTheImage() throws {
        let jpeg = try ImageCodec.encodeJPEG(patternImage(width: 32, height: 32), quality: 90)
        // Junk between two header segments, before the start-of-scan marker: libjpeg warns
        // "Corrupt JPEG data: 3 extraneous bytes before marker 0xda", but every pixel is intact.
        let bytes = [UInt8](jpeg)
        let startOfScan = try #require((0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xDA })
        let padded = Data(bytes[..<startOfScan] + [0x12, 0x34, 0x56] + bytes[startOfScan...])
        #expect(try ImageCodec.decode(padded) == ImageCodec.decode(jpeg))
    }

    @Test(.enabled(if: coco128PersonRoot != nil, "needs ../shared/data/coco128-person"))
    func decodesEveryCoco128Image() throws {
        let directory = coco128PersonRoot!.appendingPathComponent("JPEGImages")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".jpg") }.sorted()
        #expect(files.count == 134)
        var grayscaleFiles = 0
        for file in files {
            let url = directory.appendingPathComponent(file)
            let header = try ImageCodec.header(contentsOf: url)
            let image = try ImageCodec.decode(contentsOf: url)
            #expect(image.width == header.width && image.height == header.height && image.channels == 3)
            if header.storedChannels == 1 { grayscaleFiles += 1 }
        }
        #expect(grayscaleFiles == 1)  // the README lists one grayscale image
    }
}
