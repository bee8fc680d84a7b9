import ArgumentParser
import Foundation
import Hardware
import Torch
import Vision

/// Calibrates a trained checkpoint for INT8, evaluates FP32 and INT8 AP on the validation split
/// and, on request, their single-thread latency.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "INT8 post-training quantization of a trained checkpoint: FP32 vs INT8 AP@0.5 (and latency).",
        discussion: """
        Folds batch norm into the convolutions, quantizes weights per channel (qint8, symmetric) and \
        activations per tensor (quint8) with ranges calibrated on --calibration-images training images, \
        then runs libtorch's quantized kernels on the chosen --engine. --list-engines shows the engines \
        this libtorch has. --output saves the calibration (QuantizationParameters JSON, the input of \
        the ONNX QDQ export).
        """)

    @OptionGroup var dataset: DatasetOptionGroup

    @OptionGroup var trained: CheckpointOptionGroup

    @OptionGroup var quantizedEngine: QuantizedEngineOption

    @Option(help: "Calibration method: minmax or percentile.")
    var calibration = CalibrationMethod.minMax.rawValue

    @Option(help: "Upper percentile of the percentile method.")
    var percentile = 99.99

    @Option(help: "Training images to calibrate on.")
    var calibrationImages = 32

    @Flag(help: "One weight scale per convolution instead of per output channel (some NPUs run it much faster; less accurate).")
    var perTensor = false

    @Flag(help: "Also measure FP32 and INT8 latency at batch 1.")
    var latency = false

    @OptionGroup var threading: MeasurementThreadsOption

    @Option(help: "Write the calibration (QuantizationParameters JSON) to this file.")
    var output: String?

    @Flag(help: "List the quantized engines of this libtorch and exit.")
    var listEngines = false

    func validate() throws {
        guard CalibrationMethod(rawValue: calibration) != nil else {
            throw ValidationError("--calibration must be minmax or percentile, not '\(calibration)'")
        }
    }

    func run() throws {
        if listEngines {
            print("quantized engines: \(QuantizedDetector.availableEngines.joined(separator: ", "))"
                  + "  (accuracy on \(QuantizedDetector.referenceEngine ?? "none"), latency on \(QuantizedDetector.defaultEngine ?? "none"))")
            return
        }
        guard let engine = quantizedEngine.engine ?? QuantizedDetector.referenceEngine,
              let latencyEngine = quantizedEngine.engine ?? QuantizedDetector.defaultEngine else {
            throw ValidationError("this libtorch has no quantized engine")
        }
        let (detector, weights, _) = try trained.loadDetector(classNames: dataset.classNames) { try dataset.load(split: dataset.trainSplit) }
        let architecture = detector.architecture

        let options = CalibrationOptions(method: CalibrationMethod(rawValue: calibration)!, percentile: percentile, perTensorWeights: perTensor)
        let parameters = try Torch.withNoGrad {
            try QuantizationCalibrator.calibrate(detector, dataset: try dataset.load(split: dataset.trainSplit),
                                                 imageCount: calibrationImages, options: options)
        }
        if let output {
            try parameters.write(to: URL(fileURLWithPath: output))
            print("wrote \(output)")
        }
        let int8 = try QuantizedDetector(detector, parameters: parameters, engine: engine)
        let validation = try dataset.load(split: dataset.valSplit)
        let fp32Result = try DetectorEvaluation.evaluate(detector, on: validation)
        let int8Result = try DetectorEvaluation.evaluate(architecture: architecture, on: validation) { try int8($0) }
        let method = options.method == .percentile ? "percentile \(percentile)" : "min-max"
        print("\(architecture) on \(dataset.data)/\(dataset.valSplit) (\(int8Result.images) images); "
              + "INT8 on \(engine), \(method) calibration on \(parameters.imageCount) images")
        print(String(format: "FP32 AP@0.5 %.4f  mAP@[.5:.95] %.4f", fp32Result.averagePrecision50, fp32Result.cocoAveragePrecision))
        print(String(format: "INT8 AP@0.5 %.4f  mAP@[.5:.95] %.4f  (AP@0.5 change %+.4f)", int8Result.averagePrecision50,
                     int8Result.cocoAveragePrecision, int8Result.averagePrecision50 - fp32Result.averagePrecision50))

        if latency {
            let fp32 = try TorchFP32Backend(threads: threading.threads, weights: weights).measure(architecture: architecture)
            let int8Latency = try TorchInt8Backend(engine: latencyEngine, threads: threading.threads, weights: weights).measure(architecture: architecture)
            for measurement in [fp32, int8Latency] {
                print(String(format: "%@ latency: median %.3f ms  IQR %.3f ms  (%d runs, %d thread(s))", measurement.backend,
                             measurement.median, measurement.interquartileRange, measurement.samplesMilliseconds.count, threading.threads))
            }
        }
    }
}
