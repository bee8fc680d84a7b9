import Foundation
import Testing
@testable import Torch

/// Sizes in tensor files come from the file: crafted ones must be errors, never traps or
/// out-of-bounds reads.
@Suite struct TensorFileTests {
    private func little<Value: FixedWidthInteger>(_ value: Value) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    @Test func anArchiveWithAnOverflowingShapeIsRejected() {
        var bytes = Array("EDGT".utf8) + little(UInt32(1)) + little(UInt32(1))
        bytes += little(UInt32(1)) + Array("x".utf8) + little(DType.float32.rawValue) + little(UInt32(2))
        bytes += little(Int64.max / 2) + little(Int64(4)) + little(UInt64(0))
        #expect(throws: TensorArchiveError.self) { try TensorArchive(decoding: Data(bytes)) }
    }

    /// A zip with stored entries, as torch.save writes (CRCs left 0: the reader does not check them).
    private func storedZip(_ entries: [(name: String, data: [UInt8])]) -> [UInt8] {
        var file: [UInt8] = [], directory: [UInt8] = []
        for (name, data) in entries {
            let offset = UInt32(file.count), nameBytes = Array(name.utf8)
            let sizes = little(UInt32(0)) + little(UInt32(data.count)) + little(UInt32(data.count)) + little(UInt16(nameBytes.count)) + little(UInt16(0))
            file += little(UInt32(0x0403_4b50)) + little(UInt16(20)) + little(UInt16(0)) + little(UInt16(0)) + little(UInt32(0)) + sizes + nameBytes + data
            directory += little(UInt32(0x0201_4b50)) + little(UInt16(20)) + little(UInt16(20)) + little(UInt16(0)) + little(UInt16(0))
                + little(UInt32(0)) + sizes + little(UInt16(0)) + little(UInt16(0)) + little(UInt16(0)) + little(UInt32(0)) + little(offset) + nameBytes
        }
        let end = little(UInt32(0x0605_4b50)) + little(UInt16(0)) + little(UInt16(0)) + little(UInt16(entries.count)) + little(UInt16(entries.count))
            + little(UInt32(directory.count)) + little(UInt32(file.count)) + little(UInt16(0))
        return file + directory + end
    }

    /// torch.save({"w": tensor}) for a tensor of `size` and `stride` over a 4-float storage, pickled by hand.
    private func checkpoint(size: [Int64], stride: [Int64]) throws -> URL {
        func text(_ value: String) -> [UInt8] { [0x8C, UInt8(value.utf8.count)] + Array(value.utf8) }
        func tuple(_ values: [Int64]) -> [UInt8] { [0x28] + values.flatMap { [0x8A, 8] + little($0) } + [0x74] }
        var pickle: [UInt8] = [0x80, 0x02, 0x7D, 0x28] + text("w") + Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8) + [0x28]
        pickle += [0x28] + text("storage") + Array("ctorch\nFloatStorage\n".utf8) + text("0") + text("cpu") + [0x4B, 4, 0x74, 0x51]
        pickle += [0x4B, 0] + tuple(size) + tuple(stride) + [0x89] + Array("ccollections\nOrderedDict\n".utf8) + [0x29, 0x52]
        pickle += [0x74, 0x52, 0x75, 0x2E]
        let storage = [Float(1), 2, 3, 4].flatMap { little($0.bitPattern) }
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-\(UUID().uuidString).pth")
        try Data(storedZip([("archive/data.pkl", pickle), ("archive/data/0", storage)])).write(to: url)
        return url
    }

    @Test func aHandPickledCheckpointReadsAndCraftedViewsAreRejected() throws {
        let good = try checkpoint(size: [2, 2], stride: [1, 2])  // a transposed view
        defer { try? FileManager.default.removeItem(at: good) }
        let archive = try TensorArchive(pyTorchCheckpoint: good)
        #expect(archive.entries.map(\.name) == ["w"])
        #expect(try archive["w"]!.floats() == [1, 3, 2, 4])

        for (size, stride) in [([Int64(1_000_000)], [Int64(1)]), ([Int64.max / 2, 4], [Int64(1), 1]), ([Int64(2)], [Int64(-1)])] {
            let crafted = try checkpoint(size: size, stride: stride)
            defer { try? FileManager.default.removeItem(at: crafted) }
            let error = #expect(throws: TensorArchiveError.self) { try TensorArchive(pyTorchCheckpoint: crafted) }
            #expect("\(error!)".contains("'w'"), "\(size) \(stride): \(error!)")
        }
    }

    @Test func aZipWithoutAPickleIsNotACheckpoint() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-\(UUID().uuidString).pth")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(storedZip([("archive/notes.txt", Array("hello".utf8))])).write(to: url)
        let error = #expect(throws: TensorArchiveError.self) { try TensorArchive(pyTorchCheckpoint: url) }
        #expect("\(error!)".contains("data.pkl"))
    }
}
