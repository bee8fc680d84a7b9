import Foundation

/// Named tensors in a small, documented binary file (module state, fixtures).
///
/// Layout, all integers little-endian:
///   magic "EDGT" (4 bytes), version UInt32 = 1, entry count UInt32, then per entry:
///   name length UInt32 + UTF-8 name, dtype Int32 (c10::ScalarType code, see DType),
///   rank UInt32, rank × Int64 sizes, payload byte count UInt64, payload (row-major elements).
public struct TensorArchive {
    public var entries: [(name: String, tensor: Tensor)]

    static let magic: [UInt8] = Array("EDGT".utf8)
    static let version: UInt32 = 1

    public init(entries: [(name: String, tensor: Tensor)]) { self.entries = entries }

    public func encoded() throws -> Data {
        var data = Data(Self.magic)
        data.appendLittleEndian(Self.version)
        data.appendLittleEndian(UInt32(entries.count))
        for (name, tensor) in entries {
            let nameBytes = Array(name.utf8)
            data.appendLittleEndian(UInt32(nameBytes.count))
            data.append(contentsOf: nameBytes)
            data.appendLittleEndian(tensor.dtype.rawValue)
            let shape = tensor.shape
            data.appendLittleEndian(UInt32(shape.count))
            for size in shape { data.appendLittleEndian(Int64(size)) }
            let payload = try tensor.detach().rawBytes()
            data.appendLittleEndian(UInt64(payload.count))
            data.append(contentsOf: payload)
        }
        return data
    }

    public func write(to url: URL) throws {
        try encoded().write(to: url, options: .atomic)
    }

    public init(contentsOf url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TensorArchiveError.unreadable(path: url.path, reason: "\(error)")
        }
        try self.init(decoding: data, path: url.path)
    }

    public init(decoding data: Data, path: String = "<memory>") throws {
        var reader = ByteReader(bytes: [UInt8](data), path: path)
        guard try reader.bytes(4) == Self.magic else {
            throw TensorArchiveError.malformed(path: path, offset: 0, reason: "missing EDGT magic")
        }
        let version: UInt32 = try reader.integer()
        guard version == Self.version else {
            throw TensorArchiveError.malformed(path: path, offset: 4, reason: "version \(version), expected \(Self.version)")
        }
        let count: UInt32 = try reader.integer()
        var entries: [(name: String, tensor: Tensor)] = []
        for _ in 0..<count {
            let nameLength: UInt32 = try reader.integer()
            guard let name = String(bytes: try reader.bytes(Int(nameLength)), encoding: .utf8) else {
                throw TensorArchiveError.malformed(path: path, offset: reader.offset, reason: "tensor name is not UTF-8")
            }
            let code: Int32 = try reader.integer()
            guard let dtype = DType(rawValue: code) else {
                throw TensorArchiveError.malformed(path: path, offset: reader.offset, reason: "unknown dtype \(code) for '\(name)'")
            }
            let rank: UInt32 = try reader.integer()
            var shape: [Int] = []
            for _ in 0..<rank {
                let size: Int64 = try reader.integer()
                guard size >= 0 else {
                    throw TensorArchiveError.malformed(path: path, offset: reader.offset, reason: "negative size in '\(name)'")
                }
                shape.append(Int(size))
            }
            let byteCount: UInt64 = try reader.integer()
            // Sizes come from the file: a crafted shape must be an error, not an overflow trap.
            var expected = dtype.byteWidth
            for size in shape {
                let (product, overflow) = expected.multipliedReportingOverflow(by: size)
                guard !overflow else {
                    throw TensorArchiveError.malformed(path: path, offset: reader.offset, reason: "shape \(shape) of '\(name)' overflows")
                }
                expected = product
            }
            guard byteCount == UInt64(expected) else {
                throw TensorArchiveError.malformed(
                    path: path, offset: reader.offset, reason: "'\(name)' has \(byteCount) payload bytes, shape \(shape) needs \(expected)")
            }
            let payload = try reader.bytes(expected)
            entries.append((name, try Tensor.fromRawBytes(payload, shape: shape, dtype: dtype)))
        }
        self.entries = entries
    }

    /// The tensor stored under `name`.
    public subscript(name: String) -> Tensor? { entries.first { $0.name == name }?.tensor }
}

/// Why a tensor archive could not be read.
public enum TensorArchiveError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case malformed(path: String, offset: Int, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): "tensor archive \(path): cannot read (\(reason))"
        case let .malformed(path, offset, reason): "tensor archive \(path) at byte \(offset): \(reason)"
        }
    }
}

private struct ByteReader {
    let bytes: [UInt8]
    let path: String
    var offset = 0

    mutating func bytes(_ count: Int) throws -> [UInt8] {
        guard count >= 0, offset + count <= bytes.count else {
            throw TensorArchiveError.malformed(path: path, offset: offset, reason: "truncated: needs \(count) more bytes")
        }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    mutating func integer<Value: FixedWidthInteger>() throws -> Value {
        let raw = try bytes(MemoryLayout<Value>.size)
        var value: Value = 0
        for (index, byte) in raw.enumerated() { value |= Value(truncatingIfNeeded: byte) << (8 * index) }
        return value
    }
}

extension Data {
    fileprivate mutating func appendLittleEndian<Value: FixedWidthInteger>(_ value: Value) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
