import Foundation
import Torch

/// Which layout a pretrained checkpoint was written in.
public enum CheckpointFormat: String, Codable, Sendable, CustomStringConvertible {
    /// A checkpoint directory written by `edgenas train` (or the demo's base model).
    case edgenas
    /// FastestDet's whole detector (`backbone.*`, `SPP.*`, `detect_head.*`), Megvii's ShuffleNetV2.
    case fastestDet = "fastestdet"
    /// FastestDet's ImageNet backbone alone (`first_conv.*`, `stageN.*`), Megvii's ShuffleNetV2.
    case fastestDetBackbone = "fastestdet-backbone"
    /// torchvision's `shufflenet_v2_x0_5` (`conv1.*`, `stageN.K.branch1/2.*`), ImageNet-normalised RGB input.
    case torchvisionBackbone = "torchvision-backbone"

    public var description: String { rawValue }
}

/// Pretrained weights, renamed and reordered into EdgeNAS's own names and channel order
/// (`stage3.unit0.branch2.pw1.conv.weight`, RGB input in [0, 1]), ready to be inherited into any
/// architecture with `WeightInheritance`.
public struct PretrainedWeights {
    /// The network the tensors belong to. A backbone-only checkpoint gives the baseline,
    /// whose neck and head have no tensors.
    public var architecture: DetectorArchitecture
    /// Parameters and buffers by EdgeNAS name.
    public var tensors: [String: Tensor]
    /// Names of the class layer's rows, when the checkpoint says (FastestDet: `coco.names`).
    public var classNames: [String]?
    public var format: CheckpointFormat
    /// The file or directory read.
    public var path: String

    public init(architecture: DetectorArchitecture, tensors: [String: Tensor], classNames: [String]?, format: CheckpointFormat, path: String) {
        self.architecture = architecture
        self.tensors = tensors
        self.classNames = classNames
        self.format = format
        self.path = path
    }

    /// The weights of a detector in memory, under their names: the tensors themselves, or
    /// copies when the values must stay as they are now while the detector trains on.
    public init(_ detector: Detector, copying: Bool, classNames: [String]? = nil, path: String) throws {
        var tensors: [String: Tensor] = [:]
        for (name, tensor) in detector.namedState() { tensors[name] = copying ? try tensor.detach().clone() : tensor }
        self.init(architecture: detector.architecture, tensors: tensors, classNames: classNames, format: .edgenas, path: path)
    }

    /// Reads `path`: an `edgenas train` checkpoint directory, or a PyTorch checkpoint of
    /// FastestDet's detector or backbone or of torchvision's ShuffleNetV2 0.5x (the layout is
    /// recognised from the tensor names). Class names come from `classNamesFile`, else from the
    /// one `*.names` file beside a PyTorch checkpoint, else stay unknown.
    public static func load(from path: String, classNamesFile: String? = nil) throws -> PretrainedWeights {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw PretrainedWeightsError.missing(path: path)
        }
        var classNames = try classNamesFile.map { try readClassNames(URL(fileURLWithPath: $0)) }
        if isDirectory.boolValue {
            return try loadEdgeNAS(directory: url, classNames: classNames)
        }
        if classNames == nil, let beside = try namesFile(besides: url) { classNames = try readClassNames(beside) }
        let archive = try TensorArchive(pyTorchCheckpoint: url)
        return try fromPyTorch(archive, path: path, classNames: classNames)
    }

    /// Renames a PyTorch state dict into EdgeNAS's layout (see `load`).
    public static func fromPyTorch(_ archive: TensorArchive, path: String, classNames: [String]?) throws -> PretrainedWeights {
        var state: [String: Tensor] = [:]
        for (name, tensor) in archive.entries {
            // Wrappers people save around a state dict: {"model": ...}, {"state_dict": ...}, DataParallel's "module.".
            var key = name
            for prefix in ["state_dict.", "model.", "module."] where key.hasPrefix(prefix) { key.removeFirst(prefix.count) }
            state[key] = tensor
        }
        let converter = PyTorchLayoutConverter(state: state, path: path)
        let format: CheckpointFormat
        if state["backbone.first_conv.0.weight"] != nil, state["detect_head.conv1x1.conv1x1.0.weight"] != nil {
            format = .fastestDet
        } else if state["first_conv.0.weight"] != nil, state["stage2.0.branch_main.0.weight"] != nil {
            format = .fastestDetBackbone
        } else if state["conv1.0.weight"] != nil, state["stage2.0.branch1.0.weight"] != nil {
            format = .torchvisionBackbone
        } else {
            throw PretrainedWeightsError.unknownLayout(path: path, sampleKeys: Array(state.keys.sorted().prefix(5)))
        }
        let (architecture, tensors) = try converter.convert(format)
        if let classNames, format == .fastestDet, classNames.count != architecture.classCount {
            throw PretrainedWeightsError.classNamesMismatch(path: path, names: classNames.count, rows: architecture.classCount)
        }
        return PretrainedWeights(architecture: architecture, tensors: tensors, classNames: format == .fastestDet ? classNames : nil,
                                 format: format, path: path)
    }

    private static func loadEdgeNAS(directory: URL, classNames: [String]?) throws -> PretrainedWeights {
        guard let checkpoint = try TrainingCheckpoint.load(from: directory) else {
            throw PretrainedWeightsError.unknownLayout(path: directory.path, sampleKeys: ["(a directory without \(TrainingCheckpoint.stateFile))"])
        }
        let architecture = try DetectorArchitecture(shortName: checkpoint.architecture)
        let archive = try TensorArchive(contentsOf: directory.appendingPathComponent(checkpoint.deployedModelFile))
        let tensors = Dictionary(archive.entries.map { ($0.name, $0.tensor) }, uniquingKeysWith: { first, _ in first })
        return PretrainedWeights(architecture: architecture, tensors: tensors, classNames: classNames,
                                 format: .edgenas, path: directory.path)
    }

    static func readClassNames(_ url: URL) throws -> [String] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw PretrainedWeightsError.missing(path: url.path) }
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// The one `*.names` file in the checkpoint's folder (FastestDet ships `coco.names`), if exactly one.
    private static func namesFile(besides url: URL) throws -> URL? {
        let folder = url.deletingLastPathComponent()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path))?.filter { $0.hasSuffix(".names") } ?? []
        return names.count == 1 ? folder.appendingPathComponent(names[0]) : nil
    }
}

/// Why pretrained weights could not be read or used.
public enum PretrainedWeightsError: Error, Equatable, CustomStringConvertible {
    case missing(path: String)
    case unknownLayout(path: String, sampleKeys: [String])
    case missingTensor(path: String, key: String)
    case shapeMismatch(path: String, key: String, expected: [Int], found: [Int])
    case classNamesMismatch(path: String, names: Int, rows: Int)
    case layoutMismatch(half: Int, units: Int)

    public var description: String {
        switch self {
        case .missing(let path):
            "pretrained weights: \(path) does not exist or cannot be read"
        case let .unknownLayout(path, keys):
            "pretrained weights: \(path) is not a layout EdgeNAS reads (an 'edgenas train' checkpoint directory, FastestDet's "
                + "detector or backbone, or torchvision's shufflenet_v2_x0_5); its first keys are \(keys)"
        case let .missingTensor(path, key):
            "pretrained weights: \(path) has no tensor '\(key)'"
        case let .shapeMismatch(path, key, expected, found):
            "pretrained weights: \(path): '\(key)' has shape \(found), expected \(expected)"
        case let .classNamesMismatch(path, names, rows):
            "pretrained weights: \(path): the class list names \(names) classes but the class layer has \(rows) rows"
        case let .layoutMismatch(half, units):
            "internal: no channel correspondence between the ShuffleNetV2 layouts for \(half) channels per branch, \(units) units"
        }
    }
}
