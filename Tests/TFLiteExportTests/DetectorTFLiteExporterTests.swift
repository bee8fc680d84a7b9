import DetectionData
import Foundation
import Hardware
import ONNXExport
import Testing
import Torch
import Vision
@testable import TFLiteExport

/// A small member of the family with every kind of node: strided convolutions, max and average
/// pooling, upsampling, channel split and shuffle, a grouped (2) head convolution.
let smallArchitecture = DetectorArchitecture(
    headKernelSize: 3, headGroups: 2, headChannels: 16, inputWidthPixels: 64, stemChannels: 8,
    stageChannels: [16, 32, 64], stageRepeats: [2, 2, 1], neckChannels: 16, sppBranches: 2)

/// A detector with weights from its own generator and batch norms with running statistics of a
/// few training-mode passes, in evaluation mode, and its INT8 calibration on random images.
func exportedDetector(_ architecture: DetectorArchitecture, seed: UInt64 = 5, perTensor: Bool = false) throws -> (Detector, QuantizationParameters) {
    let detector = try Torch.seeded(seed) { try Detector(architecture) }
    try Torch.withNoGrad {
        for pass in 0..<3 { _ = try detector(Tensor.uniform(architecture.inputShape(batch: 2), generator: Generator(seed: seed + UInt64(pass)))) }
    }
    detector.eval()
    let images = try (0..<2).map { try Tensor.uniform(architecture.inputShape(batch: 1), generator: Generator(seed: 40 + UInt64($0))) }
    return (detector, try QuantizationCalibrator.calibrate(detector, images: images, options: CalibrationOptions(perTensorWeights: perTensor)))
}

struct DetectorTFLiteExporterTests {
    @Test func int8ModelIsFullIntegerWithPerChannelWeightsAndBiasesOnTheirInputsScale() throws {
        let (detector, parameters) = try exportedDetector(smallArchitecture)
        let model = try DetectorTFLiteExporter.model(graph: detector.graph, convolutions: detector.foldedConvolutions(),
                                                     quantization: parameters, classNames: ["person"])
        let tensors = model.tensors
        #expect(Set(model.operations.map(\.code)) == [
            .quantize, .conv2D, .depthwiseConv2D, .pad, .maxPool2D, .averagePool2D, .resizeNearestNeighbor, .concatenation, .add,
            .slice, .reshape, .transpose, .split, .dequantize, .logistic, .softmax,
        ])
        // Float in and out; the image quantized on its calibrated grid, moved to int8.
        let input = tensors[Int(model.inputs[0])], output = tensors[Int(model.outputs[0])]
        #expect(input.type == .float32 && input.shape == [1, 64, 64, 3])
        #expect(output.type == .float32 && output.shape == [1, 4, 4, 6] && output.name == "detections")
        let image = try parameters.activation("image")
        #expect(tensors[Int(model.operations[0].outputs[0])].quantization
            == TFLiteQuantization(scales: [Float(image.scale)], zeroPoints: [Int64(image.zeroPoint - 128)]))

        let convolutions = model.operations.filter { $0.code == .conv2D || $0.code == .depthwiseConv2D }
        let requantizations = convolutions.filter { tensors[Int($0.outputs[0])].name.hasSuffix(".requantized") }
        #expect(convolutions.count - requantizations.count
            == detector.graph.nodes.filter { if case .convolution = $0.operation { true } else { false } }.count + 1)
        // Every concatenation reads tensors on its own grid; those that were not are requantized
        // by a 1x1 depthwise convolution of weight 1 (127 at 1/127) and bias 0, never by an
        // int8-to-int8 QUANTIZE (the one QUANTIZE is the image's).
        #expect(model.operations.filter { $0.code == .quantize }.count == 1 && !requantizations.isEmpty)
        for concatenation in model.operations where concatenation.code == .concatenation && tensors[Int(concatenation.outputs[0])].type == .int8 {
            let grid = tensors[Int(concatenation.outputs[0])].quantization
            #expect(concatenation.inputs.allSatisfy { tensors[Int($0)].quantization == grid })
        }
        for requantization in requantizations {
            let filter = tensors[Int(requantization.inputs[1])], bias = tensors[Int(requantization.inputs[2])]
            #expect(filter.shape[0...2] == [1, 1, 1] && model.buffers[Int(filter.buffer)].allSatisfy { $0 == 127 })
            #expect(filter.quantization?.scales.allSatisfy { $0 == Float(1.0 / 127) } == true)
            #expect(model.buffers[Int(bias.buffer)].allSatisfy { $0 == 0 })
        }
        for operation in convolutions {
            let (source, filter, bias) = (tensors[Int(operation.inputs[0])], tensors[Int(operation.inputs[1])], tensors[Int(operation.inputs[2])])
            let result = tensors[Int(operation.outputs[0])]
            #expect(source.type == .int8 && filter.type == .int8 && bias.type == .int32 && result.type == .int8, "\(result.name)")
            let dimension = operation.code == .depthwiseConv2D ? 3 : 0
            let filterGrid = try #require(filter.quantization), biasGrid = try #require(bias.quantization)
            #expect(filterGrid.dimension == dimension && filterGrid.scales.count == Int(filter.shape[dimension]), "\(result.name)")
            #expect(filterGrid.zeroPoints.allSatisfy { $0 == 0 } && filter.buffer > 0 && bias.buffer > 0)
            let inputScale = Double(source.quantization!.scales[0])
            #expect(zip(biasGrid.scales, filterGrid.scales).allSatisfy { $0 == Float(Double($1) * inputScale) }, "\(result.name)")
            // The integers sit within the symmetric int8 range, and they are the weights at that scale.
            #expect(model.buffers[Int(filter.buffer)].allSatisfy { Int8(bitPattern: $0) >= -127 })
        }
        // The grouped head convolution: split in two, one convolution per group, concatenated.
        let split = try #require(model.operations.first { $0.code == .split })
        #expect(split.outputs.count == 2 && tensors[Int(split.outputs[0])].shape == [1, 4, 4, 8])
        // Strided windows read an explicit symmetric PAD, VALID.
        for operation in model.operations where [.maxPool2D, .averagePool2D].contains(operation.code) {
            #expect(model.operations.contains { $0.code == .pad && $0.outputs == [operation.inputs[0]] })
        }
        let bytes = model.serialized()
        #expect(Array(bytes[4..<8]) == Array("TFL3".utf8) && bytes.count % 16 == 0)
    }

    /// `--per-tensor`: every filter and bias has one scale (what some NPUs run faster).
    @Test func perTensorWeightsHaveOneScalePerConvolution() throws {
        let (detector, parameters) = try exportedDetector(smallArchitecture, perTensor: true)
        let model = try DetectorTFLiteExporter.model(graph: detector.graph, convolutions: detector.foldedConvolutions(),
                                                     quantization: parameters, classNames: ["person"])
        let convolutions = model.operations.filter { $0.code == .conv2D || $0.code == .depthwiseConv2D }
        #expect(!convolutions.isEmpty)
        for operation in convolutions {
            let filter = model.tensors[Int(operation.inputs[1])], bias = model.tensors[Int(operation.inputs[2])]
            #expect(filter.quantization?.scales.count == 1 && bias.quantization?.scales.count == 1, "\(filter.name)")
            let inputScale = Double(model.tensors[Int(operation.inputs[0])].quantization!.scales[0])
            #expect(bias.quantization!.scales[0] == Float(Double(filter.quantization!.scales[0]) * inputScale))
        }
    }

    @Test func fp32ModelHasFloatWeightsAndTheSameOperatorsWithoutQuantization() throws {
        let (detector, _) = try exportedDetector(smallArchitecture)
        let model = try DetectorTFLiteExporter.model(graph: detector.graph, convolutions: detector.foldedConvolutions(),
                                                     quantization: nil, classNames: ["person"])
        #expect(!model.operations.contains { [.quantize, .dequantize].contains($0.code) })
        #expect(model.tensors.allSatisfy { ($0.type == .float32 || $0.type == .int32) && $0.quantization == nil })
        #expect(throws: DetectorExportError.classNamesMismatch(names: ["a", "b"], classCount: 1)) {
            try DetectorTFLiteExporter.model(graph: detector.graph, convolutions: detector.foldedConvolutions(), quantization: nil,
                                             classNames: ["a", "b"])
        }
    }
}

/// The exported files run in LiteRT (PyPI's ai-edge-litert, in the check scripts' virtual
/// environment): scripts/check_tflite.py checks their structure and compares them with
/// EdgeNAS's outputs and AP@0.5 (FP32 within 1e-4 x (1 + |value|), INT8 within one quantization
/// step on average of EdgeNAS's INT8 on QNNPACK) and with onnxruntime on the ONNX exports of the
/// same weights.
@Suite(.serialized)
struct LiteRTParityTests {
    static let python = ProcessInfo.processInfo.environment["EDGENAS_PYTHON"]

    @Test(.enabled(if: python != nil, "needs EDGENAS_PYTHON, the check scripts' environment (scripts/test.sh sets it)"),
          arguments: [(smallArchitecture, false), (try! DetectorArchitecture(shortName: "k5-g4-c48-w256"), false), (smallArchitecture, true),
                      (try! DetectorArchitecture(shortName: "k3-g2-c48-w192-h128"), false)])
    func liteRTAgreesWithEdgeNAS(architecture: DetectorArchitecture, perTensor: Bool) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-litert-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        _ = try SyntheticDataWriter().write(to: directory.appendingPathComponent("data"), seed: 2, trainCount: 1, valCount: 6)
        let validation = try VOCDataset(root: directory.appendingPathComponent("data"), split: "val")
        let (detector, parameters) = try exportedDetector(architecture, perTensor: perTensor)
        let engine = try #require(QuantizedDetector.referenceEngine)
        let quantized = try QuantizedDetector(detector, parameters: parameters, engine: engine)
        var tflite: [String: String] = [:], onnx: [String: String] = [:]
        for (precision, grid) in [("fp32", nil), ("int8", parameters)] as [(String, QuantizationParameters?)] {
            try DetectorTFLiteExporter.serializedModel(detector, quantization: grid, classNames: ["person"])
                .write(to: directory.appendingPathComponent("model-\(precision).tflite"))
            try DetectorONNXExporter.serializedModel(detector, quantization: grid, classNames: ["person"])
                .write(to: directory.appendingPathComponent("model-\(precision).onnx"))
            tflite[precision] = "../model-\(precision).tflite"
            onnx[precision] = "../model-\(precision).onnx"
        }
        let bundle = directory.appendingPathComponent("check")
        try ExportCheckBundle.write(
            to: bundle, architecture: architecture, dataset: validation, imageCount: 6, models: onnx, tfliteModels: tflite,
            runs: [("edgenas-fp32", { try detector($0) }), ("edgenas-int8", { try quantized($0) })],
            int8BranchScales: try detector.graph.output.inputs.map { try parameters.activation($0).scale }, int8Engine: engine)

        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Self.python))
        // Random weights detect nothing: their AP@0.5 (about 0.01) moves with single detections
        // near the score threshold, so it is not compared here; AP parity is shown on trained
        // weights (docs/deployment.md). The outputs are compared in full.
        process.arguments = [root.appendingPathComponent("scripts/check_tflite.py").path, bundle.path, "--ap-tolerance", "1",
                             "--json", directory.appendingPathComponent("result.json").path]
        let log = directory.appendingPathComponent("check.log")
        try Data().write(to: log)
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = process.standardOutput
        try process.run()
        process.waitUntilExit()
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(process.terminationStatus == 0, "\(architecture): \(output)")
        let result = try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("result.json"))) as? [String: Any]
        let precisions = try #require(result?["precisions"] as? [String: [String: Any]], "\(output)")
        #expect(Set(precisions.keys) == ["fp32", "int8"])
        #expect((precisions["int8"]?["operators"] as? [String])?.contains("CONV_2D") == true)
    }
}
