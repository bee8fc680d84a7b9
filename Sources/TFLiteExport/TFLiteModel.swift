// The part of the TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs, version 3)
// that a detector needs, as Swift values, and their FlatBuffers encoding. Slot numbers and enum
// values are the schema's; a union field takes two slots (its type, then its value).

/// TFLite's `TensorType`.
enum TFLiteTensorType: Int8 {
    case float32 = 0, int32 = 2, int8 = 9
}

/// TFLite's `BuiltinOperator`, the ones a detector uses.
enum TFLiteOperator: Int32 {
    case add = 0, averagePool2D = 1, concatenation = 2, conv2D = 3, depthwiseConv2D = 4, dequantize = 6, logistic = 14
    case maxPool2D = 17, reshape = 22, softmax = 25, pad = 34, transpose = 39, split = 49, slice = 65
    case resizeNearestNeighbor = 97, quantize = 114
}

/// One quantization grid: per tensor (one scale) or per channel along `dimension`.
struct TFLiteQuantization: Equatable {
    var scales: [Float]
    var zeroPoints: [Int64]
    var dimension: Int = 0
}

struct TFLiteTensor {
    var name: String
    var shape: [Int32]
    var type: TFLiteTensorType
    /// Index into the model's buffers; 0 (the empty buffer) for activations.
    var buffer: UInt32 = 0
    var quantization: TFLiteQuantization?
}

/// A builtin operator's options table (the `BuiltinOptions` union), by union member.
enum TFLiteOptions {
    enum Padding: Int8 { case same = 0, valid = 1 }
    enum Activation: Int8 { case none = 0, relu = 1 }

    case conv2D(padding: Padding, stride: Int32, activation: Activation)
    case depthwiseConv2D(padding: Padding, stride: Int32, activation: Activation)
    case pool2D(padding: Padding, stride: Int32, filter: Int32, activation: Activation)
    case softmax(beta: Float)
    case concatenation(axis: Int32, activation: Activation)
    case add(activation: Activation)
    case reshape(newShape: [Int32])
    case pad, transpose, slice
    case split(count: Int32)
    case resizeNearestNeighbor

    /// The member's index in the `BuiltinOptions` union.
    var unionType: UInt8 {
        switch self {
        case .conv2D: 1
        case .depthwiseConv2D: 2
        case .pool2D: 5
        case .softmax: 9
        case .concatenation: 10
        case .add: 11
        case .reshape: 17
        case .pad: 22
        case .transpose: 26
        case .split: 35
        case .slice: 48
        case .resizeNearestNeighbor: 74
        }
    }

    func write(_ builder: inout FlatBufferBuilder) -> FlatBufferOffset {
        // Vectors before the table that refers to them.
        var newShape: FlatBufferOffset?
        if case .reshape(let shape) = self { newShape = builder.vector(shape) }
        builder.startTable()
        switch self {
        case let .conv2D(padding, stride, activation):
            builder.add(0, padding.rawValue)
            builder.add(1, stride)
            builder.add(2, stride)
            builder.add(3, activation.rawValue)
            builder.add(4, Int32(1))
            builder.add(5, Int32(1))
        case let .depthwiseConv2D(padding, stride, activation):
            builder.add(0, padding.rawValue)
            builder.add(1, stride)
            builder.add(2, stride)
            builder.add(3, Int32(1))  // depth multiplier
            builder.add(4, activation.rawValue)
            builder.add(5, Int32(1))
            builder.add(6, Int32(1))
        case let .pool2D(padding, stride, filter, activation):
            builder.add(0, padding.rawValue)
            builder.add(1, stride)
            builder.add(2, stride)
            builder.add(3, filter)
            builder.add(4, filter)
            builder.add(5, activation.rawValue)
        case .softmax(let beta):
            builder.add(0, beta)
        case let .concatenation(axis, activation):
            builder.add(0, axis)
            builder.add(1, activation.rawValue)
        case .add(let activation):
            builder.add(0, activation.rawValue)
        case .reshape:
            builder.add(0, offset: newShape!)
        case .split(let count):
            builder.add(0, count)
        case .resizeNearestNeighbor:
            builder.add(0, false)  // align_corners
            builder.add(1, false)  // half_pixel_centers
        case .pad, .transpose, .slice:
            break
        }
        return builder.endTable()
    }
}

struct TFLiteOperation {
    var code: TFLiteOperator
    var inputs: [Int32]
    var outputs: [Int32]
    var options: TFLiteOptions?
}

/// A one-subgraph TFLite model.
struct TFLiteModel {
    var description: String
    var tensors: [TFLiteTensor] = []
    var operations: [TFLiteOperation] = []
    var inputs: [Int32] = []
    var outputs: [Int32] = []
    /// Constant data by buffer index; buffer 0 is the schema's required empty buffer.
    var buffers: [[UInt8]] = [[]]

    /// Operators that read or write a float tensor: in a full-integer model, the input's
    /// quantization and the float head, which an integer NPU leaves on the CPU by design.
    var floatOperatorCount: Int {
        operations.filter { operation in
            (operation.inputs + operation.outputs).contains { $0 >= 0 && tensors[Int($0)].type == .float32 }
        }.count
    }

    /// The `.tflite` file's bytes (schema version 3, identifier "TFL3").
    func serialized() -> [UInt8] {
        var builder = FlatBufferBuilder(capacity: buffers.reduce(1 << 16) { $0 + $1.count + 32 })
        let codes = Array(Set(operations.map(\.code))).sorted { $0.rawValue < $1.rawValue }
        let codeIndex = Dictionary(uniqueKeysWithValues: codes.enumerated().map { ($1, UInt32($0)) })

        let bufferTables = buffers.map { data -> FlatBufferOffset in
            // Constant data is 16-byte aligned, as the schema asks (force_align: 16).
            let vector = data.isEmpty ? nil : builder.bytes(data, alignment: 16)
            builder.startTable()
            if let vector { builder.add(0, offset: vector) }
            return builder.endTable()
        }
        let codeTables = codes.map { code -> FlatBufferOffset in
            builder.startTable()
            // Codes below 127 also go into the deprecated byte field, which older readers use.
            builder.add(0, Int8(clamping: code.rawValue))
            builder.add(2, Int32(1))
            builder.add(3, code.rawValue)
            return builder.endTable()
        }
        let tensorTables = tensors.map { tensor -> FlatBufferOffset in
            let shape = builder.vector(tensor.shape)
            let name = builder.string(tensor.name)
            let quantization = tensor.quantization.map { grid -> FlatBufferOffset in
                let scales = builder.vector(grid.scales)
                let zeroPoints = builder.vector(grid.zeroPoints)
                builder.startTable()
                builder.add(2, offset: scales)
                builder.add(3, offset: zeroPoints)
                builder.add(6, Int32(grid.dimension))
                return builder.endTable()
            }
            builder.startTable()
            builder.add(0, offset: shape)
            builder.add(1, tensor.type.rawValue)
            builder.add(2, tensor.buffer)
            builder.add(3, offset: name)
            if let quantization { builder.add(4, offset: quantization) }
            return builder.endTable()
        }
        let operationTables = operations.map { operation -> FlatBufferOffset in
            let inputs = builder.vector(operation.inputs)
            let outputs = builder.vector(operation.outputs)
            let options = operation.options.map { $0.write(&builder) }
            builder.startTable()
            builder.add(0, codeIndex[operation.code]!)
            builder.add(1, offset: inputs)
            builder.add(2, offset: outputs)
            if let options, let type = operation.options?.unionType {
                builder.add(3, type)
                builder.add(4, offset: options)
            }
            return builder.endTable()
        }
        let tensorVector = builder.vector(of: tensorTables)
        let inputVector = builder.vector(inputs)
        let outputVector = builder.vector(outputs)
        let operationVector = builder.vector(of: operationTables)
        let subgraphName = builder.string("main")
        builder.startTable()
        builder.add(0, offset: tensorVector)
        builder.add(1, offset: inputVector)
        builder.add(2, offset: outputVector)
        builder.add(3, offset: operationVector)
        builder.add(4, offset: subgraphName)
        let subgraph = builder.endTable()

        let codeVector = builder.vector(of: codeTables)
        let subgraphVector = builder.vector(of: [subgraph])
        let descriptionString = builder.string(description)
        let bufferVector = builder.vector(of: bufferTables)
        builder.startTable()
        builder.add(0, UInt32(3))
        builder.add(1, offset: codeVector)
        builder.add(2, offset: subgraphVector)
        builder.add(3, offset: descriptionString)
        builder.add(4, offset: bufferVector)
        let model = builder.endTable()
        return builder.finish(root: model, identifier: "TFL3")
    }
}
