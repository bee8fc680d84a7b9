import ArgumentParser
import Foundation
import Hardware
import ONNXExport
import Torch
import Vision

/// Writes a trained detector as ONNX (FP32, and INT8 in QDQ form) for the board's toolchain,
/// and optionally a bundle that `scripts/check_onnx.py` uses to check the models in onnxruntime.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a trained checkpoint as ONNX (FP32 and INT8 QDQ).",
        discussion: """
        Writes <output>/model-fp32.onnx and, with --int8, <output>/model-int8.onnx: batch norm folded \
        into the convolutions, opset \(DetectorONNXExporter.opsetVersion), input 'image' [batch, 3, S, S] \
        in [0, 1], output 'detections'; the architecture, class names and pre/post-processing are in the \
        model's metadata. The INT8 model carries the calibration EdgeNAS's own INT8 path uses (given with \
        --calibration, from 'edgenas quantize --output', or calibrated here on --calibration-images \
        training images) and is saved beside it as quantization.json. --check-images N also writes \
        <output>/check/: N validation images and EdgeNAS's outputs on them, for \
        'python3 scripts/check_onnx.py <output>/check'.
        """)

    @OptionGroup var dataset: DatasetOptionGroup
    @OptionGroup var trained: CheckpointOptionGroup

    @Option(help: "Export format (onnx).")
    var format = "onnx"

    @Option(help: "Architecture the weights are for (default: the checkpoint's).")
    var arch: String?

    @Flag(help: "Also write the INT8 model in QDQ form.")
    var int8 = false

    @Option(help: "Calibration file (QuantizationParameters JSON from 'edgenas quantize --output'); default: calibrate here.")
    var calibration: String?

    @Option(help: "Training images to calibrate on when no --calibration file is given.")
    var calibrationImages = 32

    @OptionGroup var quantizedEngine: QuantizedEngineOption

    @Option(help: "Validation images in the check bundle (0: no bundle).")
    var checkImages = 0

    @Option(help: "Output directory.")
    var output = "export"

    func validate() throws {
        guard format == "onnx" else { throw ValidationError("--format must be onnx, not '\(format)'") }
        guard checkImages >= 0 else { throw ValidationError("--check-images must be 0 or more, not \(checkImages)") }
    }

    func run() throws {
        let requested = try arch.map { try DetectorArchitecture(shortName: $0) }
        let classNames = dataset.classNames
        let detector = try trained.loadDetector(classNames: classNames, architecture: requested) { try dataset.load(split: dataset.trainSplit) }.detector
        let architecture = detector.architecture
        let directory = URL(fileURLWithPath: output)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        var models = ["fp32": "model-fp32.onnx"]
        try Torch.withNoGrad {
            try DetectorONNXExporter.serializedModel(detector, classNames: classNames).write(to: directory.appendingPathComponent(models["fp32"]!))
        }
        print("wrote \(directory.appendingPathComponent(models["fp32"]!).path) (\(architecture), FP32)")

        var runs: [(name: String, forward: (Tensor) throws -> Tensor)] = [("edgenas-fp32", { try detector($0) })]
        var branchScales: [Double]?
        if int8 {
            let parameters = try calibrationParameters(detector)
            try parameters.write(to: directory.appendingPathComponent("quantization.json"))
            models["int8"] = "model-int8.onnx"
            try Torch.withNoGrad {
                try DetectorONNXExporter.serializedModel(detector, quantization: parameters, classNames: classNames)
                    .write(to: directory.appendingPathComponent(models["int8"]!))
            }
            print("wrote \(directory.appendingPathComponent(models["int8"]!).path) (\(architecture), INT8 QDQ, "
                  + "\(parameters.options.method.rawValue) calibration on \(parameters.imageCount) images)")
            guard let engine = quantizedEngine.engine ?? QuantizedDetector.defaultEngine else { throw ValidationError("this libtorch has no quantized engine") }
            let quantized = try QuantizedDetector(detector, parameters: parameters, engine: engine)
            runs.append(("edgenas-int8", { try quantized($0) }))
            branchScales = try detector.graph.output.inputs.map { try parameters.activation($0).scale }
        }

        guard checkImages > 0 else { return }
        let bundle = directory.appendingPathComponent("check")
        let validation = try dataset.load(split: dataset.valSplit)
        try ONNXCheckBundle.write(to: bundle, architecture: architecture, dataset: validation, imageCount: checkImages,
                                  models: models.mapValues { "../\($0)" }, runs: runs, int8BranchScales: branchScales)
        print("wrote \(bundle.path): \(min(checkImages, validation.count)) images of \(dataset.data)/\(dataset.valSplit); "
              + "check with: python3 scripts/check_onnx.py \(bundle.path)")
    }

    /// The calibration of the INT8 model: the given file (checked against the architecture), or
    /// min-max on `calibrationImages` training images.
    private func calibrationParameters(_ detector: Detector) throws -> QuantizationParameters {
        if let calibration {
            let parameters = try QuantizationParameters(contentsOf: URL(fileURLWithPath: calibration))
            guard parameters.architecture == detector.architecture.description else {
                throw QuantizationError.architectureMismatch(parameters: parameters.architecture, network: detector.architecture.description)
            }
            return parameters
        }
        return try Torch.withNoGrad {
            try QuantizationCalibrator.calibrate(detector, dataset: try dataset.load(split: dataset.trainSplit), imageCount: calibrationImages)
        }
    }
}
