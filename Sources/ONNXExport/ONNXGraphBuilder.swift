import Foundation

/// Collects the nodes and initializers of one ONNX graph. Knows the format, not the detector:
/// `DetectorONNXExporter` says what to add.
struct ONNXGraphBuilder {
    private(set) var nodes: [Onnx_NodeProto] = []
    private(set) var initializers: [Onnx_TensorProto] = []
    private var initializerNames: Set<String> = []

    /// Adds a node with one output named `output` and returns that name.
    @discardableResult
    mutating func add(_ operatorType: String, name: String, inputs: [String], output: String,
                      attributes: [Onnx_AttributeProto] = []) -> String {
        var node = Onnx_NodeProto()
        node.opType = operatorType
        node.name = name
        node.input = inputs
        node.output = [output]
        node.attribute = attributes
        nodes.append(node)
        return output
    }

    /// Adds a constant tensor; returns its name. Names are unique in a graph, so adding the same
    /// name twice is a programming error of the exporter.
    @discardableResult
    mutating func constant(_ name: String, _ tensor: ONNXTensorData, dimensions: [Int]) -> String {
        precondition(initializerNames.insert(name).inserted, "ONNX initializer '\(name)' added twice")
        precondition(dimensions.reduce(1, *) == tensor.count, "ONNX initializer '\(name)': \(tensor.count) values for shape \(dimensions)")
        var proto = Onnx_TensorProto()
        proto.name = name
        proto.dims = dimensions.map(Int64.init)
        proto.dataType = Int32(tensor.dataType.rawValue)
        proto.rawData = tensor.littleEndianBytes
        initializers.append(proto)
        return name
    }

    /// A scalar constant (shape []).
    @discardableResult
    mutating func scalar(_ name: String, _ tensor: ONNXTensorData) -> String { constant(name, tensor, dimensions: []) }
}

/// The values of a constant tensor in one of the element types EdgeNAS writes.
enum ONNXTensorData {
    case float([Float])
    case uint8([UInt8])
    case int8([Int8])
    case int32([Int32])
    case int64([Int64])

    var count: Int {
        switch self {
        case .float(let values): values.count
        case .uint8(let values): values.count
        case .int8(let values): values.count
        case .int32(let values): values.count
        case .int64(let values): values.count
        }
    }

    var dataType: Onnx_TensorProto.DataType {
        switch self {
        case .float: .float
        case .uint8: .uint8
        case .int8: .int8
        case .int32: .int32
        case .int64: .int64
        }
    }

    /// `raw_data` is little-endian whatever the machine; the values are converted explicitly so
    /// the file does not depend on the host's byte order.
    var littleEndianBytes: Data {
        switch self {
        case .float(let values): Self.bytes(values.map { $0.bitPattern.littleEndian })
        case .uint8(let values): Data(values)
        case .int8(let values): Data(values.map { UInt8(bitPattern: $0) })
        case .int32(let values): Self.bytes(values.map(\.littleEndian))
        case .int64(let values): Self.bytes(values.map(\.littleEndian))
        }
    }

    private static func bytes<T>(_ values: [T]) -> Data { values.withUnsafeBufferPointer { Data(buffer: $0) } }
}

/// Node attributes, one constructor per kind EdgeNAS uses.
enum ONNXAttribute {
    static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .int
        attribute.i = Int64(value)
        return attribute
    }

    static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .ints
        attribute.ints = values.map(Int64.init)
        return attribute
    }

    static func string(_ name: String, _ value: String) -> Onnx_AttributeProto {
        var attribute = Onnx_AttributeProto()
        attribute.name = name
        attribute.type = .string
        attribute.s = Data(value.utf8)
        return attribute
    }
}

/// A graph input or output: a float tensor whose first dimension is the symbolic batch size.
func batchedFloatValue(_ name: String, channels: Int, height: Int, width: Int, batchName: String = "batch") -> Onnx_ValueInfoProto {
    var batch = Onnx_TensorShapeProto.Dimension()
    batch.dimParam = batchName
    let fixed = [channels, height, width].map { size -> Onnx_TensorShapeProto.Dimension in
        var dimension = Onnx_TensorShapeProto.Dimension()
        dimension.dimValue = Int64(size)
        return dimension
    }
    var tensorType = Onnx_TypeProto.Tensor()
    tensorType.elemType = Int32(Onnx_TensorProto.DataType.float.rawValue)
    tensorType.shape.dim = [batch] + fixed
    var value = Onnx_ValueInfoProto()
    value.name = name
    value.type.tensorType = tensorType
    return value
}
