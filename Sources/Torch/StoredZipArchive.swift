import Foundation

/// The entries of a zip file whose entries are stored uncompressed, as PyTorch's `torch.save`
/// writes them (zip64 records included). Compressed entries are refused: `torch.save` never
/// writes them, so such a file is not a checkpoint.
struct StoredZipArchive {
    let bytes: [UInt8]
    let path: String
    /// Entry name -> byte range of its data.
    private(set) var entries: [String: Range<Int>] = [:]

    init(bytes: [UInt8], path: String) throws {
        self.bytes = bytes
        self.path = path
        // End of central directory: 22 bytes plus a comment of at most 65,535, at the end.
        let lowest = max(0, bytes.count - 22 - 65_535)
        guard bytes.count >= 22, let end = try stride(from: bytes.count - 22, through: lowest, by: -1).first(where: { try uint32(at: $0) == 0x0605_4b50 }) else {
            throw malformed("no zip end-of-central-directory record (not a zip file, or truncated)")
        }
        var count = Int(try uint16(at: end + 10))
        var directory = Int(try uint32(at: end + 16))
        if count == 0xFFFF || directory == 0xFFFF_FFFF {
            // Zip64: the locator sits just before the classic record and points at the zip64 record.
            guard end >= 20, try uint32(at: end - 20) == 0x0706_4b50 else { throw malformed("zip64 locator missing") }
            let record = try int(uint64(at: end - 20 + 8))
            guard try uint32(at: record) == 0x0606_4b50 else { throw malformed("zip64 end-of-central-directory record missing") }
            count = try int(uint64(at: record + 32))
            directory = try int(uint64(at: record + 48))
        }
        var offset = directory
        for _ in 0..<count {
            guard try uint32(at: offset) == 0x0201_4b50 else { throw malformed("central directory entry expected at byte \(offset)") }
            let method = try uint16(at: offset + 10)
            var size = Int(try uint32(at: offset + 24))
            let nameLength = Int(try uint16(at: offset + 28)), extraLength = Int(try uint16(at: offset + 30))
            let commentLength = Int(try uint16(at: offset + 32))
            var localHeader = Int(try uint32(at: offset + 42))
            let name = String(decoding: try slice(offset + 46, nameLength), as: UTF8.self)
            // Zip64 extended information: the 64-bit values of the fields that read 0xFFFFFFFF, in order.
            var extra = offset + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let (tag, length) = (try uint16(at: extra), Int(try uint16(at: extra + 2)))
                if tag == 0x0001 {
                    var field = extra + 4
                    if size == 0xFFFF_FFFF { size = try int(uint64(at: field)); field += 8 }  // uncompressed
                    if try uint32(at: offset + 20) == 0xFFFF_FFFF { field += 8 }  // compressed
                    if localHeader == 0xFFFF_FFFF { localHeader = try int(uint64(at: field)) }
                }
                extra += 4 + length
            }
            guard method == 0 else { throw malformed("entry '\(name)' is compressed (method \(method)); torch.save stores entries uncompressed") }
            guard try uint32(at: localHeader) == 0x0403_4b50 else { throw malformed("local header of '\(name)' missing") }
            let start = localHeader + 30 + Int(try uint16(at: localHeader + 26)) + Int(try uint16(at: localHeader + 28))
            guard size >= 0, start <= bytes.count, size <= bytes.count - start else { throw malformed("entry '\(name)' runs past the end of the file") }
            entries[name] = start..<(start + size)
            offset += 46 + nameLength + extraLength + commentLength
        }
    }

    func data(_ name: String) -> ArraySlice<UInt8>? { entries[name].map { bytes[$0] } }

    private func malformed(_ reason: String) -> TensorArchiveError { .malformed(path: path, offset: 0, reason: reason) }

    private func slice(_ offset: Int, _ count: Int) throws -> ArraySlice<UInt8> {
        guard offset >= 0, count >= 0, offset <= bytes.count, count <= bytes.count - offset else {
            throw malformed("truncated: needs \(count) bytes at \(offset), the file has \(bytes.count)")
        }
        return bytes[offset..<(offset + count)]
    }

    private func little<Value: FixedWidthInteger>(_ offset: Int, _: Value.Type) throws -> Value {
        try slice(offset, MemoryLayout<Value>.size).reversed().reduce(Value(0)) { $0 << 8 | Value($1) }
    }

    private func uint16(at offset: Int) throws -> UInt16 { try little(offset, UInt16.self) }
    private func uint32(at offset: Int) throws -> UInt32 { try little(offset, UInt32.self) }
    private func uint64(at offset: Int) throws -> UInt64 { try little(offset, UInt64.self) }
    private func int(_ value: UInt64) throws -> Int {
        guard let result = Int(exactly: value), result <= bytes.count else { throw malformed("offset \(value) is past the end of the file") }
        return result
    }
}
