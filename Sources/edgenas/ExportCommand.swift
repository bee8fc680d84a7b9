import ArgumentParser
import Foundation
import Hardware
import LatencyBackends
import ONNXExport
import TFLiteExport
import Torch
import Vision

/// Writes a trained detector as ONNX (FP32, and INT8 in QDQ form) and/or TFLite (FP32, and
/// full-integer INT8) for the board's toolchain, and optionally a bundle that
/// `scripts/check_onnx.py` and `scripts/check_tflite.py` use to check the models in onnxruntime
/// and LiteRT.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a trained checkpoint as ONNX (FP32 and INT8 QDQ) or TFLite (FP32 and full-integer INT8).",
        discussion: """
        ONNX: <output>/model-fp32.onnx and, with --int8, <output>/model-int8.onnx: batch norm folded \
        into the convolutions, opset \(DetectorONNXExporter.opsetVersion), input 'image' [batch, 3, S, S] \
        in [0, 1], output 'detections'; the architecture, class names and pre/post-processing are in the \
        model's metadata. TFLite (--to tflite, or --to onnx,tflite for both): <output>/model-fp32.tflite \
        and, with --int8, <output>/model-int8.tflite: channels last, input [1, S, S, 3], output \
        [1, S/16, S/16, 5 + classes]; INT8 is full-integer (int8 activations, per-channel int8 weights, \
        int32 biases) with a float input and output, for LiteRT with an NPU delegate or Arm's Vela. The \
        INT8 models carry the calibration EdgeNAS's own INT8 path uses (given with --calibration, from \
        'edgenas quantize --output', or calibrated here on --calibration-images training images), saved \
        beside them as quantization.json. --check-images N also writes <output>/check/: N validation \
        images and EdgeNAS's outputs on them, for 'scripts/check_onnx.py <output>/check' and \
        'scripts/check_tflite.py <output>/check'.
        """)

    /// The model formats a board deploys, the same the latency backends send it.
    typealias Format = DeployedModel.Format

    @OptionGroup var dataset: DatasetOptionGroup
    @OptionGroup var trained: CheckpointOptionGroup

    // Not `--format`: that is the dataset's (voc, yolo, coco).
    @Option(name: .customLong("to"), help: "Model formats to write: onnx, tflite, or onnx,tflite.")
    var modelFormat = "onnx"

    @Option(help: "Architecture the weights are for (default: the checkpoint's).")
    var arch: String?

    @Flag(help: "Also write the INT8 models (ONNX: QDQ form; TFLite: full integer).")
    var int8 = false

    @Option(help: "Calibration file (QuantizationParameters JSON from 'edgenas quantize --output'); default: calibrate here.")
    var calibration: String?

    @Option(help: "Training images to calibrate on when no --calibration file is given.")
    var calibrationImages = 32

    @Flag(help: "One weight scale per convolution instead of per output channel (some NPUs run it much faster; less accurate).")
    var perTensor = false

    @OptionGroup var quantizedEngine: QuantizedEngineOption

    @Option(help: "Validation images in the check bundle (0: no bundle).")
    var checkImages = 0

    @Option(help: "Output directory.")
    var output = "export"

    /// The formats asked for, in the order given.
    var formats: [Format] { modelFormat.split(separator: ",").compactMap { Format(rawValue: $0.trimmingCharacters(in: .whitespaces)) } }

    func validate() throws {
        let names = modelFormat.split(separator: ",")
        guard !names.isEmpty, formats.count == names.count, Set(formats).count == formats.count else {
            throw ValidationError("--to must be onnx, tflite or onnx,tflite, not '\(modelFormat)'")
        }
        guard checkImages >= 0 else { throw ValidationError("--check-images must be 0 or more, not \(checkImages)") }
    }

    func run() throws {
        let requested = try arch.map { try DetectorArchitecture(shortName: $0) }
        let classNames = dataset.classNames
        let detector = try trained.loadDetector(classNames: classNames, architecture: requested) { try dataset.load(split: dataset.trainSplit) }.detector
        let architecture = detector.architecture
        let directory = URL(fileURLWithPath: output)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        var runs: [(name: String, forward: (Tensor) throws -> Tensor)] = [("edgenas-fp32", { try detector($0) })]
        var parameters: QuantizationParameters?
        var branchScales: [Double]?
        var int8Engine: String?
        if int8 {
            let calibrated = try calibrationParameters(detector)
            try calibrated.write(to: directory.appendingPathComponent("quantization.json"))
            guard let engine = quantizedEngine.engine ?? QuantizedDetector.referenceEngine else { throw ValidationError("this libtorch has no quantized engine") }
            let quantized = try QuantizedDetector(detector, parameters: calibrated, engine: engine)
            int8Engine = engine
            runs.append(("edgenas-int8", { try quantized($0) }))
            branchScales = try detector.graph.output.inputs.map { try calibrated.activation($0).scale }
            parameters = calibrated
        }
        // Precision -> file, per format.
        var written: [Format: [String: String]] = [:]
        for format in formats {
            for precision in int8 ? ["fp32", "int8"] : ["fp32"] {
                let file = "model-\(precision).\(format.rawValue)"
                let quantization = precision == "int8" ? parameters : nil
                let data = try Torch.withNoGrad { () throws -> Data in
                    switch format {
                    case .onnx: try DetectorONNXExporter.serializedModel(detector, quantization: quantization, classNames: classNames)
                    case .tflite: try DetectorTFLiteExporter.serializedModel(detector, quantization: quantization, classNames: classNames)
                    }
                }
                try data.write(to: directory.appendingPathComponent(file))
                written[format, default: [:]][precision] = file
                let detail = quantization.map { ", \(format == .onnx ? "INT8 QDQ" : "full-integer INT8"), \($0.options.method.rawValue) calibration on \($0.imageCount) images" } ?? ", FP32"
                print("wrote \(directory.appendingPathComponent(file).path) (\(architecture)\(detail))")
            }
        }

        guard checkImages > 0 else { return }
        let bundle = directory.appendingPathComponent("check")
        let validation = try dataset.load(split: dataset.valSplit)
        try ExportCheckBundle.write(to: bundle, architecture: architecture, dataset: validation, imageCount: checkImages,
                                    models: (written[.onnx] ?? [:]).mapValues { "../\($0)" },
                                    tfliteModels: (written[.tflite] ?? [:]).mapValues { "../\($0)" }, runs: runs, int8BranchScales: branchScales,
                                    int8Engine: int8Engine)
        let scripts = formats.map { "scripts/check_\($0.rawValue).py \(bundle.path)" }.joined(separator: " and ")
        print("wrote \(bundle.path): \(min(checkImages, validation.count)) images of \(dataset.data)/\(dataset.valSplit); check with \(scripts)")
    }

    /// The calibration of the INT8 model: the given file (checked against the architecture), or
    /// min-max on `calibrationImages` training images.
    private func calibrationParameters(_ detector: Detector) throws -> QuantizationParameters {
        if let calibration {
            let parameters = try QuantizationParameters(contentsOf: URL(fileURLWithPath: calibration))
            guard parameters.architecture == detector.architecture.description else {
                throw QuantizationError.architectureMismatch(parameters: parameters.architecture, network: detector.architecture.description)
            }
            guard !perTensor || parameters.options.perTensorWeights else {
                throw ValidationError("--per-tensor: \(calibration) has per-channel weight scales; calibrate with 'edgenas quantize --per-tensor' or leave out --calibration")
            }
            return parameters
        }
        return try Torch.withNoGrad {
            try QuantizationCalibrator.calibrate(detector, dataset: try dataset.load(split: dataset.trainSplit), imageCount: calibrationImages,
                                                 options: CalibrationOptions(perTensorWeights: perTensor))
        }
    }
}
