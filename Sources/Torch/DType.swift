import CTorch

/// Element types, numbered like c10::ScalarType so the code travels through the C shim
/// unchanged (quantized types included, for INT8 inference).
public enum DType: Int32, Sendable, Hashable, Codable, CaseIterable {
    case uint8 = 0
    case int8 = 1
    case int16 = 2
    case int32 = 3
    case int64 = 4
    case float16 = 5
    case float32 = 6
    case float64 = 7
    case complex32 = 8
    case complex64 = 9
    case complex128 = 10
    case bool = 11
    case qint8 = 12
    case quint8 = 13
    case qint32 = 14
    case bfloat16 = 15
    /// Two 4-bit quantized values per byte.
    case quint4x2 = 16
    /// Four 2-bit quantized values per byte.
    case quint2x4 = 17

    /// Bytes per element (per storage byte for the packed sub-byte quantized types).
    public var byteWidth: Int {
        switch self {
        case .uint8, .int8, .bool, .qint8, .quint8, .quint4x2, .quint2x4: 1
        case .int16, .float16, .bfloat16: 2
        case .int32, .float32, .qint32, .complex32: 4
        case .int64, .float64, .complex64: 8
        case .complex128: 16
        }
    }

    public var isFloatingPoint: Bool { self == .float16 || self == .bfloat16 || self == .float32 || self == .float64 }
    public var isQuantized: Bool {
        self == .qint8 || self == .quint8 || self == .qint32 || self == .quint4x2 || self == .quint2x4
    }
}

/// Swift element types that map one-to-one onto a tensor dtype (same size and layout).
public protocol TensorElement: Sendable {
    static var dtype: DType { get }
}

extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }
