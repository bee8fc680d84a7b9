// A minimal FlatBuffers writer: what a TFLite model needs (tables of scalars, offsets, strings
// and vectors), little-endian, built back to front as the FlatBuffers format requires, so every
// offset points forward to an object written before it. No FlatBuffers library for Swift is
// among the packages this project may depend on; the format is small and documented
// (https://flatbuffers.dev/internals/), and LiteRT reading our files is the test.

/// An object already in the buffer, by its distance from the buffer's end (stable while the
/// buffer grows at the front).
struct FlatBufferOffset: Hashable {
    let fromEnd: Int
}

/// Builds one FlatBuffer. Children are written before their parents (strings, vectors and
/// tables first, then the table that refers to them), and `finish` writes the root offset.
struct FlatBufferBuilder {
    /// The buffer's bytes in reverse order: index 0 is the buffer's last byte, so writing at
    /// the front is an append.
    private var reversed: [UInt8] = []
    /// The largest alignment any object asked for; the finished buffer's size is a multiple of it.
    private var maximumAlignment = 1
    /// The table being written: the buffer size at its start and its fields (slot -> offset).
    private var tableStart: Int?
    private var fields: [(slot: Int, fromEnd: Int)] = []

    init(capacity: Int = 1 << 16) {
        reversed.reserveCapacity(capacity)
    }

    private var size: Int { reversed.count }

    /// Pads so that, after `bytes` more bytes are written, the write position is a multiple of `alignment`.
    private mutating func align(_ alignment: Int, adding bytes: Int = 0) {
        maximumAlignment = max(maximumAlignment, alignment)
        let padding = (alignment - (size + bytes) % alignment) % alignment
        reversed.append(contentsOf: repeatElement(0, count: padding))
    }

    /// Writes a little-endian value at the front (its bytes reversed, so the last byte first).
    private mutating func put<T: FixedWidthInteger>(_ value: T) {
        var value = value.littleEndian
        withUnsafeBytes(of: &value) { bytes in
            for index in stride(from: bytes.count - 1, through: 0, by: -1) { reversed.append(bytes[index]) }
        }
    }

    private mutating func putOffset(_ target: FlatBufferOffset) {
        align(4)
        // The offset is relative to its own position: target address - field address.
        put(UInt32(size + 4 - target.fromEnd))
    }

    // MARK: objects

    mutating func string(_ text: String) -> FlatBufferOffset {
        let bytes = Array(text.utf8)
        align(4, adding: bytes.count + 1)
        reversed.append(0)
        reversed.append(contentsOf: bytes.reversed())
        put(UInt32(bytes.count))
        return FlatBufferOffset(fromEnd: size)
    }

    /// A vector of scalars, its elements aligned to `alignment` (at least their own size).
    mutating func vector<T: FixedWidthInteger>(_ values: [T], alignment: Int = 1) -> FlatBufferOffset {
        let width = MemoryLayout<T>.size
        align(max(4, width, alignment), adding: values.count * width)
        for value in values.reversed() { put(value) }
        put(UInt32(values.count))
        return FlatBufferOffset(fromEnd: size)
    }

    mutating func vector(_ values: [Float]) -> FlatBufferOffset {
        vector(values.map(\.bitPattern))
    }

    /// Raw bytes (a `[ubyte]`), e.g. a tensor's data, aligned to `alignment`.
    mutating func bytes(_ data: [UInt8], alignment: Int) -> FlatBufferOffset {
        vector(data, alignment: alignment)
    }

    mutating func vector(of offsets: [FlatBufferOffset]) -> FlatBufferOffset {
        align(4, adding: offsets.count * 4)
        for offset in offsets.reversed() { putOffset(offset) }
        put(UInt32(offsets.count))
        return FlatBufferOffset(fromEnd: size)
    }

    // MARK: tables

    mutating func startTable() {
        precondition(tableStart == nil, "FlatBuffers tables do not nest while being written")
        tableStart = size
        fields = []
    }

    mutating func add<T: FixedWidthInteger>(_ slot: Int, _ value: T) {
        align(MemoryLayout<T>.size)
        put(value)
        fields.append((slot, size))
    }

    mutating func add(_ slot: Int, _ value: Float) { add(slot, value.bitPattern) }

    mutating func add(_ slot: Int, _ value: Bool) { add(slot, UInt8(value ? 1 : 0)) }

    mutating func add(_ slot: Int, offset: FlatBufferOffset) {
        putOffset(offset)
        fields.append((slot, size))
    }

    /// Closes the table: its vtable (the table's and the vtable's sizes, then each slot's
    /// offset inside the table, 0 for an absent field) goes just before it.
    mutating func endTable() -> FlatBufferOffset {
        guard let start = tableStart else { preconditionFailure("endTable without startTable") }
        // The table starts with a signed offset to its vtable, filled in below.
        align(4)
        put(Int32(0))
        let table = size
        let slots = (fields.map(\.slot).max() ?? -1) + 1
        var entries = [UInt16](repeating: 0, count: slots)
        for field in fields { entries[field.slot] = UInt16(table - field.fromEnd) }
        let vtable = [UInt16(4 + 2 * slots), UInt16(table - start)] + entries
        for entry in vtable.reversed() { put(entry) }
        // vtable address = table address - soffset; the vtable sits (size - table) bytes lower.
        let soffset = Int32(size - table)
        withUnsafeBytes(of: soffset.littleEndian) { bytes in
            for index in 0..<4 { reversed[table - 1 - index] = bytes[index] }
        }
        tableStart = nil
        return FlatBufferOffset(fromEnd: table)
    }

    /// The finished buffer: the root table's offset, then the file identifier (4 characters).
    mutating func finish(root: FlatBufferOffset, identifier: String) -> [UInt8] {
        let identifierBytes = Array(identifier.utf8)
        precondition(identifierBytes.count == 4, "a FlatBuffers file identifier has 4 characters")
        align(max(maximumAlignment, 4), adding: 8)
        reversed.append(contentsOf: identifierBytes.reversed())
        putOffset(root)
        return reversed.reversed()
    }
}
