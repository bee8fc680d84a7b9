import Foundation
import ONNXRuntime
import Testing
import Torch
@testable import Vision

/// FastestDet's published weights in the shared folder (../shared/weights/fastestdet-coco), if present.
let fastestDetWeights: URL? = {
    var directory = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
    while directory.path != "/" {
        let candidate = directory.appendingPathComponent("shared/weights/fastestdet-coco")
        if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("FastestDet.onnx").path) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    return nil
}()

private let onnxRuntimeAvailable = (try? ONNXRuntimeLibrary()) != nil

/// A deterministic image in [0, 1], NCHW, RGB.
private func testImage(size: Int) throws -> Tensor {
    var values = [Float](repeating: 0, count: 3 * size * size)
    for index in values.indices {
        let (channel, pixel) = (index / (size * size), index % (size * size))
        values[index] = Float((pixel % size * (channel + 2) * 5 + pixel / size * 3 + channel * 60) % 256) / 255
    }
    return try Tensor(values, shape: [1, 3, size, size])
}

private func temporaryFile(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("edgenas-\(UUID().uuidString)-\(name)")
}

@Suite struct FastestDetImport {
    @Test(.enabled(if: fastestDetWeights != nil && onnxRuntimeAvailable, "needs ../shared/weights and libonnxruntime"))
    func importedDetectorEqualsThePublishedOnnxModel() throws {
        let folder = fastestDetWeights!
        let weights = try PretrainedWeights.load(from: folder.appendingPathComponent("fastestdet-coco-ap05-0.253.pth").path)
        #expect(weights.format == .fastestDet)
        #expect(weights.architecture.description == "k5-g1-c96-w352-n80")
        #expect(weights.classNames?.first == "person" && weights.classNames?.count == 80)

        let detector = try Detector(weights.architecture)
        let report = try WeightInheritance.inherit(weights, into: detector, classNames: weights.classNames)
        #expect(report.inheritedParameters == report.totalParameters)
        #expect(report.totalParameters == 244_490)
        detector.eval()
        let image = try testImage(size: 352)
        let ours = try Torch.withNoGrad { try detector(image) }.floats()

        // FastestDet reads BGR: the ONNX model gets the same pixels with the channels swapped.
        let bgr = try image.indexSelect(dim: 1, index: Tensor([Int64(2), 1, 0], shape: [3])).contiguous().floats()
        let session = try ONNXRuntimeSession(modelPath: folder.appendingPathComponent("FastestDet.onnx").path)
        let reference = try session.run(bgr, shape: [1, 3, 352, 352])[0]
        #expect(reference.shape == [1, 85, 22, 22])
        let difference = zip(ours, reference.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(difference < 1e-4, "largest difference \(difference)")
    }

    @Test(.enabled(if: fastestDetWeights != nil, "needs ../shared/weights"))
    func backboneCheckpointCoversTheBackbone() throws {
        let weights = try PretrainedWeights.load(from: fastestDetWeights!.appendingPathComponent("shufflenetv2-0.5x-imagenet.pth").path)
        #expect(weights.format == .fastestDetBackbone)
        let backbone = try Detector(.baseline).namedState().map(\.name).filter { $0.hasPrefix("stem") || $0.hasPrefix("stage") }
        #expect(Set(weights.tensors.keys) == Set(backbone))

        // Inherited into a detector, the backbone is copied whole and the neck and head stay fresh.
        let detector = try Detector(.baseline)
        let report = try WeightInheritance.inherit(weights, into: detector)
        let backboneParameters = detector.graph.nodes.filter { [.stem, .stage2, .stage3, .stage4].contains($0.block) }
            .reduce(0) { $0 + $1.parameterCount }
        #expect(report.inheritedParameters == backboneParameters)
    }

    @Test(.enabled(if: fastestDetWeights != nil, "needs ../shared/weights"))
    func truncatedOrForeignFilesFailNamingTheFile() throws {
        let original = try Data(contentsOf: fastestDetWeights!.appendingPathComponent("fastestdet-coco-ap05-0.253.pth"))
        let truncated = temporaryFile("truncated.pth"), text = temporaryFile("notes.pth")
        defer { try? FileManager.default.removeItem(at: truncated); try? FileManager.default.removeItem(at: text) }
        try original.prefix(original.count / 2).write(to: truncated)
        try Data("not a checkpoint".utf8).write(to: text)
        for url in [truncated, text] {
            let error = #expect(throws: TensorArchiveError.self) { try TensorArchive(pyTorchCheckpoint: url) }
            #expect("\(error!)".contains(url.path))
        }
        #expect(throws: PretrainedWeightsError.missing(path: "/nonexistent/weights.pth")) {
            try PretrainedWeights.load(from: "/nonexistent/weights.pth")
        }
    }

    @Test(.enabled(if: fastestDetWeights != nil, "needs ../shared/weights"))
    func aTensorOfTheWrongShapeIsNamed() throws {
        let url = fastestDetWeights!.appendingPathComponent("fastestdet-coco-ap05-0.253.pth")
        var archive = try TensorArchive(pyTorchCheckpoint: url)
        let key = "detect_head.obj_layers.conv5x5.0.weight"
        let position = archive.entries.firstIndex { $0.name == key }!
        archive.entries[position].tensor = try Tensor.zeros([96, 1, 3, 3])
        #expect(throws: PretrainedWeightsError.shapeMismatch(path: url.path, key: "head.objectness.dw.conv.weight",
                                                             expected: [96, 1, 5, 5], found: [96, 1, 3, 3])) {
            try PretrainedWeights.fromPyTorch(archive, path: url.path, classNames: nil)
        }
        archive.entries.remove(at: position)
        #expect(throws: PretrainedWeightsError.missingTensor(path: url.path, key: key)) {
            try PretrainedWeights.fromPyTorch(archive, path: url.path, classNames: nil)
        }
    }
}

@Suite struct TorchvisionImport {
    /// torchvision's shufflenet_v2_x0_5 with random weights, written by
    /// scripts/reference/make_torchvision_fixture.py (conv5 and the classifier left out).
    static let fixture = Bundle.module.url(forResource: "torchvision-shufflenet-x0.5-random", withExtension: "pth", subdirectory: "Fixtures")!

    @Test func namesMapOneToOneAndTheStemFoldsTheNormalisation() throws {
        let archive = try TensorArchive(pyTorchCheckpoint: Self.fixture)
        let weights = try PretrainedWeights.fromPyTorch(archive, path: Self.fixture.path, classNames: nil)
        #expect(weights.format == .torchvisionBackbone)
        let stored = Dictionary(archive.entries.map { ($0.name, $0.tensor) }, uniquingKeysWith: { a, _ in a })
        // Same layout, other names: a tensor deep in the network is copied unchanged.
        #expect(try weights.tensors["stage3.unit1.branch2.dw.conv.weight"]!.floats() == stored["stage3.1.branch2.3.weight"]!.floats())
        #expect(try weights.tensors["stage4.unit0.branch1.pw.bn.running_var"]!.floats() == stored["stage4.0.branch1.3.running_var"]!.floats())

        // The stem on [0, 1] pixels equals torchvision's stem on ImageNet-normalised pixels,
        // away from the zero-padded border.
        let detector = try Detector(.baseline)
        try WeightInheritance.inherit(weights, into: detector)
        detector.eval()
        let image = try testImage(size: 64)
        let ours = try Torch.withNoGrad { try detector.run(image, through: 1) }
        let mean = try Tensor([Float(0.485), 0.456, 0.406], shape: [1, 3, 1, 1]), deviation = try Tensor([Float(0.229), 0.224, 0.225], shape: [1, 3, 1, 1])
        let normalized = try (image - mean) / deviation
        let reference = try Torch.withNoGrad {
            let convolved = try Functional.conv2d(normalized, weight: stored["conv1.0.weight"]!, stride: (2, 2), padding: (1, 1))
            return try Functional.batchNorm(convolved, weight: stored["conv1.1.weight"]!, bias: stored["conv1.1.bias"]!,
                                            runningMean: stored["conv1.1.running_mean"]!, runningVar: stored["conv1.1.running_var"]!,
                                            training: false, momentum: 0.1, eps: 1e-5).relu()
        }
        let inner = { (t: Tensor) in try t.narrow(dim: 2, start: 1, length: 30).narrow(dim: 3, start: 1, length: 30).contiguous().floats() }
        let difference = zip(try inner(ours), try inner(reference)).map { abs($0 - $1) }.max()!
        #expect(difference < 1e-4, "largest difference \(difference)")
    }
}
