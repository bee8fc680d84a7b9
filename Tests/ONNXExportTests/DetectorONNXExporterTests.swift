import Foundation
import SwiftProtobuf
import Testing
import Torch
import Vision
@testable import ONNXExport

/// A small member of the family (every kind of node, fast to build and calibrate).
let smallArchitecture = DetectorArchitecture(
    headKernelSize: 3, headGroups: 2, headChannels: 16, inputWidthPixels: 64, stemChannels: 8,
    stageChannels: [16, 32, 64], stageRepeats: [2, 2, 1], neckChannels: 16, sppBranches: 2)

/// A seeded detector whose batch norms have non-trivial running statistics (a few training-mode
/// passes over random images), so folding them into the convolutions matters.
func seededDetector(_ architecture: DetectorArchitecture, seed: UInt64 = 5) throws -> Detector {
    // Seeded under the lock: tests build models on other threads at the same time.
    let detector = try Torch.seeded(seed) { try Detector(architecture) }
    try Torch.withNoGrad {
        for pass in 0..<3 { _ = try detector(Tensor.uniform(architecture.inputShape(batch: 2), generator: Generator(seed: seed + UInt64(pass)))) }
    }
    detector.eval()
    return detector
}

func calibrate(_ detector: Detector) throws -> QuantizationParameters {
    let side = detector.architecture.inputWidth
    let images = try (0..<2).map { try Tensor.uniform([1, 3, side, side], generator: Generator(seed: 40 + UInt64($0))) }
    return try QuantizationCalibrator.calibrate(detector, images: images)
}

/// Values of a float or integer initializer.
func floats(_ tensor: Onnx_TensorProto) -> [Float] {
    tensor.rawData.withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)).map { Float(bitPattern: UInt32(littleEndian: $0)) } }
}

struct DetectorONNXExporterTests {
    @Test func fp32ModelIsTheGraphWithFoldedWeights() throws {
        let detector = try seededDetector(smallArchitecture)
        let data = try DetectorONNXExporter.serializedModel(detector, classNames: ["person"])
        let model = try Onnx_ModelProto(serializedBytes: data)

        #expect(model.irVersion == 8)
        #expect(model.opsetImport.map(\.version) == [13])
        let graph = model.graph
        let side = Int64(smallArchitecture.inputWidth), grid = Int64(smallArchitecture.gridWidth)
        #expect(graph.input.map(\.name) == ["image"])
        #expect(graph.input[0].type.tensorType.shape.dim.map(\.dimValue) == [0, 3, side, side])
        #expect(graph.input[0].type.tensorType.shape.dim[0].dimParam == "batch")
        #expect(graph.output.map(\.name) == ["detections"])
        #expect(graph.output[0].type.tensorType.shape.dim.map(\.dimValue) == [0, 6, grid, grid])

        // One Conv per convolution node, with the folded weight and bias as float initializers.
        let convolutions = detector.graph.nodes.filter { if case .convolution = $0.operation { true } else { false } }
        let convs = graph.node.filter { $0.opType == "Conv" }
        #expect(convs.count == convolutions.count)
        let initializers = Dictionary(uniqueKeysWithValues: graph.initializer.map { ($0.name, $0) })
        let folded = try detector.foldedConvolutions()
        for node in convolutions {
            let weight = try #require(initializers["\(node.name).weight"])
            #expect(weight.dims.map(Int.init) == folded[node.name]!.weightShape)
            #expect(floats(weight) == folded[node.name]!.weight)
            #expect(floats(try #require(initializers["\(node.name).bias"])) == folded[node.name]!.bias)
        }
        #expect(graph.node.filter { $0.opType == "QuantizeLinear" }.isEmpty)

        // Every node reads the image, an initializer or an earlier node's output; the graph's
        // output is produced.
        var available = Set(["image", ""]).union(initializers.keys)
        for node in graph.node {
            for input in node.input { #expect(available.contains(input), "node \(node.name) reads '\(input)' before it exists") }
            available.formUnion(node.output)
        }
        #expect(available.contains("detections"))

        let metadata = Dictionary(uniqueKeysWithValues: model.metadataProps.map { ($0.key, $0.value) })
        #expect(metadata["edgenas.architecture"] == smallArchitecture.description)
        #expect(metadata["edgenas.input_size"] == "\(side)x\(side)")
        #expect(metadata["edgenas.class_names"] == "[\"person\"]")
        #expect(metadata["edgenas.precision"] == "fp32")
        #expect(metadata["edgenas.preprocessing"]?.contains("letterbox") == true)
        #expect(metadata["edgenas.postprocessing"]?.contains("NMS") == true)
    }

    @Test func int8ModelCarriesTheCalibratedGrids() throws {
        let detector = try seededDetector(smallArchitecture)
        let parameters = try calibrate(detector)
        let model = try Onnx_ModelProto(serializedBytes: DetectorONNXExporter.serializedModel(detector, quantization: parameters,
                                                                                              classNames: ["person"]))
        let graph = model.graph
        let initializers = Dictionary(uniqueKeysWithValues: graph.initializer.map { ($0.name, $0) })
        let producers = Dictionary(uniqueKeysWithValues: graph.node.flatMap { node in node.output.map { ($0, node) } })

        // Activations: a Q/DQ pair per node output (and the image) on the calibrated grid.
        for (name, grid) in parameters.activations {
            let scale = try #require(initializers["\(name).output_scale"], "no output scale for \(name)")
            #expect(floats(scale) == [Float(grid.scale)])
            let zeroPoint = try #require(initializers["\(name).output_zero_point"])
            #expect(zeroPoint.dataType == Int32(Onnx_TensorProto.DataType.uint8.rawValue))
            #expect(Array(zeroPoint.rawData) == [UInt8(grid.zeroPoint)])
        }

        // Weights: qint8 per channel, symmetric, behind DequantizeLinear; bias int32 on
        // input scale x weight scale.
        let folded = try detector.foldedConvolutions()
        for node in detector.graph.nodes {
            guard case .convolution = node.operation else { continue }
            let conv = try #require(graph.node.first { $0.opType == "Conv" && ($0.output[0] == node.name || $0.output[0] == "\(node.name).conv") })
            let weightSource = try #require(producers[conv.input[1]])
            #expect(weightSource.opType == "DequantizeLinear")
            let integers = try #require(initializers[weightSource.input[0]])
            #expect(integers.dataType == Int32(Onnx_TensorProto.DataType.int8.rawValue))
            let scales = try parameters.weight(node.name).scales
            let values = integers.rawData.map { Int8(bitPattern: $0) }
            let perChannel = values.count / scales.count
            for (index, value) in values.enumerated() {
                let expected = (Double(folded[node.name]!.weight[index]) / Double(Float(scales[index / perChannel]))).rounded(.toNearestOrEven)
                #expect(Double(value) == min(max(expected, -127), 127))
            }
            let biasSource = try #require(producers[conv.input[2]])
            #expect(biasSource.opType == "DequantizeLinear")
            let bias = try #require(initializers[biasSource.input[0]])
            #expect(bias.dataType == Int32(Onnx_TensorProto.DataType.int32.rawValue))
            let inputScale = Double(Float(try parameters.activation(node.inputs[0]).scale))
            let biasScales = floats(try #require(initializers[biasSource.input[1]]))
            for (channel, scale) in biasScales.enumerated() {
                #expect(scale == Float(scales[channel] * inputScale))
            }
            // The convolution reads a dequantized activation.
            #expect(producers[conv.input[0]]?.opType == "DequantizeLinear")
        }
        let metadata = Dictionary(uniqueKeysWithValues: model.metadataProps.map { ($0.key, $0.value) })
        #expect(metadata["edgenas.precision"] == "int8-qdq")
    }

    @Test func weightsOfAnotherArchitectureAreRefused() throws {
        var other = smallArchitecture
        other.headKernelSize = 5
        let detector = try seededDetector(other)
        #expect(throws: DetectorExportError.weightShapeMismatch(node: "head.objectness.dw", expected: [16, 1, 3, 3], found: [16, 1, 5, 5])) {
            try DetectorONNXExporter.model(graph: DetectorGraph(smallArchitecture), convolutions: detector.foldedConvolutions(),
                                           classNames: ["person"])
        }
        let error = DetectorExportError.weightShapeMismatch(node: "head.objectness.dw", expected: [16, 1, 3, 3], found: [16, 1, 5, 5])
        #expect(error.description.contains("trained for another architecture"))
    }

    @Test func mismatchedClassNamesAndCalibrationAreRefused() throws {
        let detector = try seededDetector(smallArchitecture)
        let folded = try detector.foldedConvolutions()
        #expect(throws: DetectorExportError.classNamesMismatch(names: ["person", "car"], classCount: 1)) {
            try DetectorONNXExporter.model(graph: detector.graph, convolutions: folded, classNames: ["person", "car"])
        }
        var parameters = try calibrate(detector)
        parameters.architecture = DetectorArchitecture.baseline.description
        #expect(throws: DetectorExportError.quantizationMismatch(parameters: "k5-g1-c96-w320", network: smallArchitecture.description)) {
            try DetectorONNXExporter.model(graph: detector.graph, convolutions: folded, quantization: parameters, classNames: ["person"])
        }
    }
}
