import DetectionData
import Foundation
import Torch
import Vision

/// Inputs and EdgeNAS's own outputs for checking exported models in other runtimes:
/// `scripts/check_onnx.py` runs the `.onnx` files on the same inputs in onnxruntime,
/// `scripts/check_tflite.py` the `.tflite` files in LiteRT, and both compare outputs and AP@0.5
/// with EdgeNAS's.
///
/// Files in the bundle directory:
/// - `check.json` (`ExportCheckBundle.Manifest`): shapes, file names, ground truth, decoding settings
///   and EdgeNAS's AP@0.5 for each run;
/// - `inputs.f32`: the validation images letterboxed to the input size, float32 NCHW, little-endian;
/// - one `<run>.f32` per EdgeNAS run (e.g. `edgenas-fp32.f32`): its outputs for those inputs.
public enum ExportCheckBundle {
    public static let manifestFile = "check.json"
    public static let inputsFile = "inputs.f32"

    public struct Manifest: Codable, Sendable {
        public var architecture: String
        public var inputShape: [Int]
        public var outputShape: [Int]
        public var inputs: String
        /// ONNX model files (relative to the bundle) by precision, e.g. "fp32": "model.onnx".
        public var models: [String: String]
        /// TFLite model files by precision, e.g. "int8": "model-int8.tflite".
        public var tfliteModels: [String: String]
        /// EdgeNAS runs by name: their output file and AP@0.5 on the bundle's images.
        public var runs: [String: Run]
        /// Per image, ground-truth boxes in network-input pixels (letterboxed like the inputs).
        public var groundTruth: [[GroundTruthBox]]
        public var classCount: Int
        public var scoreThreshold: Double
        public var nmsIoU: Double
        public var maxDetections: Int
        /// Quantization steps of the INT8 network's three head branches (objectness, box,
        /// class), the unit of the INT8 output tolerance; absent for FP32-only bundles.
        public var int8BranchScales: [Double]?
        /// The libtorch quantized engine of the `edgenas-int8` run (QNNPACK, the reference, by
        /// default); the scripts name it when a runtime disagrees.
        public var int8Engine: String?
    }

    public struct Run: Codable, Sendable {
        public var outputs: String
        public var averagePrecision50: Double
    }

    public struct GroundTruthBox: Codable, Sendable {
        public var box: [Double]
        public var classIndex: Int
        public var difficult: Bool
    }

    /// Writes the bundle for the first `imageCount` images of `dataset` into `directory`:
    /// `runs` are EdgeNAS's forward functions by name (image batch [N, 3, height, width] -> output).
    /// A run is named `edgenas-<precision>` for the models of that precision to be compared with.
    public static func write(
        to directory: URL, architecture: DetectorArchitecture, dataset: any DetectionDataset, imageCount: Int,
        models: [String: String], tfliteModels: [String: String] = [:], runs: [(name: String, forward: (Tensor) throws -> Tensor)],
        int8BranchScales: [Double]? = nil, int8Engine: String? = nil
    ) throws {
        let (width, height) = (architecture.inputWidth, architecture.inputHeight)
        let count = Swift.min(imageCount, dataset.count)
        let loader = BatchLoader(dataset: dataset, batchSize: Swift.max(1, count), augmentation: .evaluation(at: architecture),
                                 shuffle: false, seed: 0)
        let batch = try loader.batch(epoch: 0, index: 0)
        let images = Array(batch.images.prefix(count * 3 * height * width))
        let input = try Tensor(images, shape: architecture.inputShape(batch: count))
        let groundTruth = (0..<count).map { slot in
            dataset.item(at: batch.itemIndices[slot]).objects.map { object in
                let box = batch.transforms[slot].toOutput(object.box)
                return GroundTruthBox(box: [box.x0, box.y0, box.x1, box.y1], classIndex: object.classIndex, difficult: object.difficult || object.crowd)
            }
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try ONNXTensorData.float(images).littleEndianBytes.write(to: directory.appendingPathComponent(inputsFile))

        let decoding = (score: 0.001, nms: 0.45, maximum: 100)
        var manifestRuns: [String: Run] = [:]
        var outputShape: [Int] = []
        for run in runs {
            let output = try Torch.withNoGrad { try run.forward(input) }
            outputShape = output.shape
            let values = try output.floats()
            let perImage = values.count / count
            let evaluated = (0..<count).map { slot in
                let detections = DetectorEvaluation.decode(
                    output: values[(slot * perImage)..<((slot + 1) * perImage)], classCount: architecture.classCount,
                    columns: architecture.gridWidth, rows: architecture.gridHeight, inputWidth: width, inputHeight: height,
                    scoreThreshold: decoding.score, nmsIoU: decoding.nms,
                    maxDetections: decoding.maximum)
                let truth = groundTruth[slot].map {
                    ObjectAnnotation(box: BoundingBox(x0: $0.box[0], y0: $0.box[1], x1: $0.box[2], y1: $0.box[3]), classIndex: $0.classIndex,
                                     difficult: $0.difficult)
                }
                return EvaluationImage(groundTruth: truth, detections: detections)
            }
            let ap = VOCEvaluator.evaluate(evaluated, classCount: architecture.classCount).meanAveragePrecision ?? 0
            let file = "\(run.name).f32"
            try ONNXTensorData.float(values).littleEndianBytes.write(to: directory.appendingPathComponent(file))
            manifestRuns[run.name] = Run(outputs: file, averagePrecision50: ap)
        }
        let manifest = Manifest(
            architecture: architecture.description, inputShape: architecture.inputShape(batch: count), outputShape: outputShape, inputs: inputsFile,
            models: models, tfliteModels: tfliteModels, runs: manifestRuns, groundTruth: groundTruth, classCount: architecture.classCount,
            scoreThreshold: decoding.score, nmsIoU: decoding.nms, maxDetections: decoding.maximum,
            int8BranchScales: int8BranchScales, int8Engine: int8Engine)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(manifest).write(to: directory.appendingPathComponent(manifestFile), options: .atomic)
    }
}
