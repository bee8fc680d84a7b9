/// The subset of Python's pickle machine that `torch.save` checkpoints use (protocols 2-4):
/// dicts (`collections.OrderedDict` included), lists, tuples, numbers, strings, and tensors
/// rebuilt by `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter` from storages the
/// pickle names by persistent id. It builds values only; no Python code runs, and an opcode
/// or global outside this subset is an error naming it.
struct CheckpointUnpickler {
    /// A tensor as the pickle describes it: a view of a storage.
    struct TensorReference {
        var storageKey: String
        var dtype: DType
        var storageElements: Int
        var offset: Int
        var shape: [Int]
        var strides: [Int]
    }

    final class PickleDictionary { var items: [(key: Value, value: Value)] = [] }
    final class PickleList { var items: [Value] = [] }

    indirect enum Value {
        case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
        case tuple([Value]), list(PickleList), dictionary(PickleDictionary)
        case global(module: String, name: String)
        /// A storage named by persistent id: ('storage', storage class, key, location, elements).
        case storage(key: String, dtype: DType, elements: Int)
        case tensor(TensorReference)
        /// An object of a class this reader does not rebuild (kept so that a checkpoint holding
        /// one beside its tensors still reads).
        case opaque(String)
    }

    private let bytes: ArraySlice<UInt8>
    private let path: String
    private var position: Int
    private var stack: [Value] = []
    private var marks: [Int] = []
    private var memo: [Int: Value] = [:]

    init(_ bytes: ArraySlice<UInt8>, path: String) {
        self.bytes = bytes
        self.path = path
        position = bytes.startIndex
    }

    private func failure(_ reason: String) -> TensorArchiveError {
        .malformed(path: path, offset: position - bytes.startIndex, reason: "pickle: \(reason)")
    }

    private mutating func read(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.endIndex - position else { throw failure("truncated") }
        defer { position += count }
        return bytes[position..<(position + count)]
    }

    private mutating func integer(_ count: Int, signed: Bool = false) throws -> Int {
        let raw = try read(count)
        var value: UInt64 = 0
        for (index, byte) in raw.enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
        if signed, count < 8, raw.last.map({ $0 & 0x80 != 0 }) == true { value |= ~UInt64(0) << (8 * UInt64(count)) }
        guard let result = signed ? Int(exactly: Int64(bitPattern: value)) : Int(exactly: value) else { throw failure("integer out of range") }
        return result
    }

    private mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw failure("unterminated line") }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    private mutating func text(_ count: Int) throws -> String { String(decoding: try read(count), as: UTF8.self) }

    private mutating func pop() throws -> Value {
        guard let value = stack.popLast() else { throw failure("stack underflow") }
        return value
    }

    /// The values pushed since the last mark, removing them and the mark.
    private mutating func popToMark() throws -> [Value] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw failure("no mark") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    mutating func load() throws -> Value {
        while true {
            let opcode = try read(1).first!
            switch opcode {
            case 0x80: _ = try read(1)                                        // PROTO
            case 0x95: _ = try read(8)                                        // FRAME
            case 0x2E: return try pop()                                       // STOP
            case 0x28: marks.append(stack.count)                              // MARK
            case 0x4E: stack.append(.none)                                    // NONE
            case 0x88: stack.append(.bool(true))                              // NEWTRUE
            case 0x89: stack.append(.bool(false))                             // NEWFALSE
            case 0x4B: stack.append(.int(try integer(1)))                     // BININT1
            case 0x4D: stack.append(.int(try integer(2)))                     // BININT2
            case 0x4A: stack.append(.int(try integer(4, signed: true)))       // BININT
            case 0x8A:                                                        // LONG1
                let count = try integer(1)
                guard count <= 8 else { throw failure("integer of \(count) bytes") }
                stack.append(.int(count == 0 ? 0 : try integer(count, signed: true)))
            case 0x47:                                                        // BINFLOAT (big-endian)
                stack.append(.float(Double(bitPattern: try read(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            case 0x58: stack.append(.string(try text(integer(4))))            // BINUNICODE
            case 0x8C: stack.append(.string(try text(integer(1))))            // SHORT_BINUNICODE
            case 0x8D: stack.append(.string(try text(integer(8))))            // BINUNICODE8
            case 0x55: stack.append(.string(try text(integer(1))))            // SHORT_BINSTRING
            case 0x54: stack.append(.string(try text(integer(4))))            // BINSTRING
            case 0x43: stack.append(.bytes(Array(try read(integer(1)))))      // SHORT_BINBYTES
            case 0x42: stack.append(.bytes(Array(try read(integer(4)))))      // BINBYTES
            case 0x29: stack.append(.tuple([]))                               // EMPTY_TUPLE
            case 0x5D: stack.append(.list(PickleList()))                            // EMPTY_LIST
            case 0x7D: stack.append(.dictionary(PickleDictionary()))                // EMPTY_DICT
            case 0x74: stack.append(.tuple(try popToMark()))                  // TUPLE
            case 0x85: stack.append(.tuple([try pop()]))                      // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))  // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))  // TUPLE3
            case 0x71: memo[try integer(1)] = stack.last                      // BINPUT
            case 0x72: memo[try integer(4)] = stack.last                      // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                          // MEMOIZE
            case 0x68, 0x6A:                                                  // BINGET, LONG_BINGET
                let key = try integer(opcode == 0x68 ? 1 : 4)
                guard let value = memo[key] else { throw failure("memo \(key) is empty") }
                stack.append(value)
            case 0x63: stack.append(.global(module: try line(), name: try line()))  // GLOBAL
            case 0x93:                                                        // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw failure("STACK_GLOBAL needs two strings") }
                stack.append(.global(module: module, name: name))
            case 0x61:                                                        // APPEND
                let value = try pop()
                guard case .list(let list) = stack.last else { throw failure("APPEND to a non-list") }
                list.items.append(value)
            case 0x65:                                                        // APPENDS
                let values = try popToMark()
                guard case .list(let list) = stack.last else { throw failure("APPENDS to a non-list") }
                list.items += values
            case 0x73:                                                        // SETITEM
                let value = try pop(), key = try pop()
                guard case .dictionary(let dictionary) = stack.last else { throw failure("SETITEM on a non-dict") }
                dictionary.items.append((key, value))
            case 0x75:                                                        // SETITEMS
                let values = try popToMark()
                guard values.count % 2 == 0, case .dictionary(let dictionary) = stack.last else { throw failure("SETITEMS on a non-dict") }
                for index in stride(from: 0, to: values.count, by: 2) { dictionary.items.append((values[index], values[index + 1])) }
            case 0x62: _ = try pop()                                          // BUILD: object state (an OrderedDict's _metadata) is not needed
            case 0x51: stack.append(try persistentLoad(pop()))                // BINPERSID
            case 0x52, 0x81:                                                  // REDUCE, NEWOBJ
                guard case .tuple(let arguments) = try pop() else { throw failure("REDUCE needs an argument tuple") }
                stack.append(try reduce(pop(), arguments))
            default:
                throw failure(String(format: "unsupported opcode 0x%02X", opcode))
            }
        }
    }

    /// torch.save's persistent id of a storage: ('storage', storage class, key, location, elements).
    private func persistentLoad(_ id: Value) throws -> Value {
        guard case .tuple(let parts) = id, parts.count == 5, case .string("storage") = parts[0],
              case .global(_, let storageClass) = parts[1], case .string(let key) = parts[2], case .int(let elements) = parts[4] else {
            throw failure("persistent id \(id) is not a torch storage")
        }
        let dtypes: [String: DType] = [
            "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16, "BFloat16Storage": .bfloat16,
            "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8, "ByteStorage": .uint8,
            "BoolStorage": .bool,
        ]
        guard let dtype = dtypes[storageClass] else { throw failure("storage class \(storageClass) is not supported") }
        guard elements >= 0 else { throw failure("storage '\(key)' has \(elements) elements") }
        return .storage(key: key, dtype: dtype, elements: elements)
    }

    private func reduce(_ callable: Value, _ arguments: [Value]) throws -> Value {
        guard case .global(let module, let name) = callable else { throw failure("REDUCE of a non-class") }
        switch (module, name) {
        case ("collections", "OrderedDict"), ("builtins", "dict"), ("__builtin__", "dict"):
            return .dictionary(PickleDictionary())
        case ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"):
            guard arguments.count >= 4, case .storage(let key, let dtype, let elements) = arguments[0], case .int(let offset) = arguments[1],
                  let shape = integers(arguments[2]), let strides = integers(arguments[3]) else {
                throw failure("\(name) arguments are not (storage, offset, size, stride, ...)")
            }
            return .tensor(TensorReference(storageKey: key, dtype: dtype, storageElements: elements, offset: offset, shape: shape, strides: strides))
        case ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_parameter_with_state"):
            guard let data = arguments.first, case .tensor = data else { throw failure("\(name) without a tensor") }
            return data
        default:
            return .opaque("\(module).\(name)")
        }
    }

    private func integers(_ value: Value) -> [Int]? {
        guard case .tuple(let items) = value else { return nil }
        let values = items.compactMap { item -> Int? in if case .int(let number) = item { number } else { nil } }
        return values.count == items.count ? values : nil
    }
}
