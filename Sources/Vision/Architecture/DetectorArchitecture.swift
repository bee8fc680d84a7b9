import DetectionData

/// One member of the FastestDet / ShuffleNetV2 detector family. The value fully determines
/// the network: `DetectorGraph(architecture)` lists every layer, and the torch model, the
/// profiler, INT8 quantization and the ONNX exporter all walk that graph.
///
/// The defaults are FastestDet's published configuration with one class (person) at 320 px:
/// ShuffleNetV2 0.5x backbone (stem 24, stages 48/96/192 with 4/8/4 units), a neck that
/// fuses strides 8, 16 and 32 at stride 16 into 96 channels, an SPP of three depthwise 5x5
/// branches, and a single-scale anchor-free head (kernel 5, groups 1, 96 channels).
public struct DetectorArchitecture: Codable, Hashable, Sendable, CustomStringConvertible {
    // MARK: Head (the reference search space)
    /// Kernel of the head's depthwise convolutions (3 or 5).
    public var headKernelSize: Int
    /// Groups of the head's input pointwise convolution (neck channels -> head channels).
    /// Channel counts must be divisible by it.
    public var headGroups: Int
    /// Channels of the detection head.
    public var headChannels: Int
    /// Requested input width in pixels. The network runs at `inputWidth`, this value rounded
    /// to the nearest multiple of 32 (ties up), because the neck adds stride-8, 16 and 32
    /// features at stride 16.
    public var inputWidthPixels: Int
    /// Requested input height in pixels, rounded as the width; nil for a square input. A
    /// camera sees one aspect ratio: a 4:3 frame letterboxed into a square input leaves a
    /// quarter of the computed pixels as padding, which a landscape input does not compute.
    public var inputHeightPixels: Int?
    /// Number of object classes (1 for the person detector).
    public var classCount: Int

    // MARK: Backbone and neck
    /// Output channels of the stem convolution.
    public var stemChannels: Int
    /// Output channels of ShuffleNetV2 stages 2, 3 and 4 (strides 8, 16, 32).
    public var stageChannels: [Int]
    /// Units per stage; the first unit of each stage has stride 2.
    public var stageRepeats: [Int]
    /// Channels of the neck: the fused stride-16 features, the SPP and the head input.
    public var neckChannels: Int
    /// Number of SPP branches; branch i is i depthwise 5x5 convolutions deep (1...3).
    public var sppBranches: Int

    public init(
        headKernelSize: Int = 5, headGroups: Int = 1, headChannels: Int = 96, inputWidthPixels: Int = 320,
        inputHeightPixels: Int? = nil, classCount: Int = 1, stemChannels: Int = 24, stageChannels: [Int] = [48, 96, 192],
        stageRepeats: [Int] = [4, 8, 4], neckChannels: Int = 96, sppBranches: Int = 3
    ) {
        self.headKernelSize = headKernelSize
        self.headGroups = headGroups
        self.headChannels = headChannels
        self.inputWidthPixels = inputWidthPixels
        self.inputHeightPixels = inputHeightPixels
        self.classCount = classCount
        self.stemChannels = stemChannels
        self.stageChannels = stageChannels
        self.stageRepeats = stageRepeats
        self.neckChannels = neckChannels
        self.sppBranches = sppBranches
    }

    /// FastestDet's configuration: kernel 5, groups 1, 96 channels, 320 px, one class.
    public static let baseline = DetectorArchitecture()

    /// The network's stride: input pixels per cell of the backbone's deepest features.
    public static let backboneStride = 32
    /// Input pixels per cell of the detection grid.
    public static let outputStride = 16

    /// The input width the network actually runs at (see `inputWidthPixels`).
    public var inputWidth: Int { Self.runSize(inputWidthPixels) }
    /// The input height the network actually runs at (see `inputHeightPixels`).
    public var inputHeight: Int { Self.runSize(inputHeightPixels ?? inputWidthPixels) }

    /// Columns of the output grid.
    public var gridWidth: Int { inputWidth / Self.outputStride }
    /// Rows of the output grid.
    public var gridHeight: Int { inputHeight / Self.outputStride }

    /// This architecture at another requested input width, the height scaled with it so that
    /// the input keeps its aspect ratio (a square stays square): a search that varies the
    /// width of a landscape base varies the content resolution, not the camera's frame.
    public func atInputWidth(_ width: Int) -> DetectorArchitecture {
        var result = self
        result.inputWidthPixels = width
        if let height = inputHeightPixels {
            result.inputHeightPixels = Int((Double(height) * Double(width) / Double(inputWidthPixels)).rounded())
        }
        return result
    }

    /// The input image at batch 1: 3 channels of `inputHeight` x `inputWidth`.
    public var imageShape: FeatureShape { FeatureShape(channels: 3, height: inputHeight, width: inputWidth) }

    /// The shape of an input batch of `count` images: [count, 3, inputHeight, inputWidth].
    public func inputShape(batch count: Int) -> [Int] { [count, 3, inputHeight, inputWidth] }

    /// A requested side rounded to the nearest multiple of the backbone's stride (ties up).
    private static func runSize(_ requested: Int) -> Int {
        max(backboneStride, (requested + backboneStride / 2) / backboneStride * backboneStride)
    }

    /// Channels of the head's output: objectness, 4 box values, one score per class.
    public var outputChannels: Int { 1 + 4 + classCount }

    /// A short, stable name: the head part always, backbone and neck parts only where they
    /// differ from the baseline, e.g. `k5-g1-c96-w320`, `k5-g1-c96-w320-h256` (landscape) or
    /// `k3-g8-c24-w224-st32.64.128`.
    public var description: String {
        var parts = ["k\(headKernelSize)", "g\(headGroups)", "c\(headChannels)", "w\(inputWidthPixels)"]
        if let inputHeightPixels { parts.append("h\(inputHeightPixels)") }
        let base = Self.baseline
        if classCount != base.classCount { parts.append("n\(classCount)") }
        if stemChannels != base.stemChannels { parts.append("s\(stemChannels)") }
        if stageChannels != base.stageChannels { parts.append("st" + stageChannels.map(String.init).joined(separator: ".")) }
        if stageRepeats != base.stageRepeats { parts.append("r" + stageRepeats.map(String.init).joined(separator: ".")) }
        if neckChannels != base.neckChannels { parts.append("nk\(neckChannels)") }
        if sppBranches != base.sppBranches { parts.append("spp\(sppBranches)") }
        return parts.joined(separator: "-")
    }

    /// Parses the short name written by `description`; parts left out take baseline values.
    public init(shortName: String) throws(ArchitectureError) {
        var result = DetectorArchitecture.baseline
        for part in shortName.split(separator: "-").map(String.init) {
            // Longest prefixes first: "spp" before "s", "st" before "s", "nk" before "n".
            let prefixes = ["spp", "st", "nk", "k", "g", "c", "w", "h", "n", "s", "r"]
            guard let prefix = prefixes.first(where: { part.hasPrefix($0) && part.count > $0.count }) else {
                throw .unparsableName(shortName, part: part)
            }
            let rest = String(part.dropFirst(prefix.count))
            func int() throws(ArchitectureError) -> Int {
                guard let value = Int(rest) else { throw .unparsableName(shortName, part: part) }
                return value
            }
            func ints() throws(ArchitectureError) -> [Int] {
                let values = rest.split(separator: ".").compactMap { Int($0) }
                guard values.count == 3 else { throw .unparsableName(shortName, part: part) }
                return values
            }
            switch prefix {
            case "k": result.headKernelSize = try int()
            case "g": result.headGroups = try int()
            case "c": result.headChannels = try int()
            case "w": result.inputWidthPixels = try int()
            case "h": result.inputHeightPixels = try int()
            case "n": result.classCount = try int()
            case "s": result.stemChannels = try int()
            case "st": result.stageChannels = try ints()
            case "r": result.stageRepeats = try ints()
            case "nk": result.neckChannels = try int()
            default: result.sppBranches = try int()
            }
        }
        // A height equal to the width is the square input, which has one name.
        if result.inputHeightPixels == result.inputWidthPixels { result.inputHeightPixels = nil }
        try result.validate()
        self = result
    }

    /// Checks that the values describe a network that can be built, naming the first field
    /// that cannot.
    public func validate() throws(ArchitectureError) {
        func require(_ condition: Bool, _ field: String, _ value: CustomStringConvertible, _ expected: String) throws(ArchitectureError) {
            if !condition { throw .invalidField(field, value: value.description, expected: expected) }
        }
        try require([3, 5, 7].contains(headKernelSize), "headKernelSize", headKernelSize, "3, 5 or 7")
        try require(headGroups >= 1, "headGroups", headGroups, "a positive number")
        try require(headChannels >= 1 && headChannels % headGroups == 0, "headChannels", headChannels,
                    "a positive multiple of headGroups (\(headGroups))")
        try require(neckChannels >= 1 && neckChannels % headGroups == 0, "neckChannels", neckChannels,
                    "a positive multiple of headGroups (\(headGroups))")
        try require((32...1024).contains(inputWidthPixels), "inputWidthPixels", inputWidthPixels, "32...1024")
        if let inputHeightPixels {
            try require((32...1024).contains(inputHeightPixels), "inputHeightPixels", inputHeightPixels, "32...1024")
        }
        try require(classCount >= 1, "classCount", classCount, "at least 1")
        try require(stemChannels >= 4, "stemChannels", stemChannels, "at least 4")
        try require(stageChannels.count == 3, "stageChannels", stageChannels, "3 values (stages 2, 3, 4)")
        try require(stageChannels.allSatisfy { $0 >= 4 && $0 % 2 == 0 }, "stageChannels", stageChannels,
                    "even values >= 4 (ShuffleNetV2 units split channels in half)")
        try require(stageRepeats.count == 3, "stageRepeats", stageRepeats, "3 values (stages 2, 3, 4)")
        try require(stageRepeats.allSatisfy { $0 >= 1 }, "stageRepeats", stageRepeats, "values >= 1")
        try require((1...3).contains(sppBranches), "sppBranches", sppBranches, "1...3")
    }
}

/// Why an architecture value cannot describe a network.
public enum ArchitectureError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidField(String, value: String, expected: String)
    case unparsableName(String, part: String)

    public var description: String {
        switch self {
        case .invalidField(let field, let value, let expected):
            "architecture field '\(field)' is \(value); expected \(expected)"
        case .unparsableName(let name, let part):
            "cannot read architecture name '\(name)': part '\(part)' is not one of kN, gN, cN, wN, hN, nN, sN, stA.B.C, rA.B.C, nkN, sppN"
        }
    }
}

extension AugmentationConfig {
    /// Training augmentation producing `architecture`'s input size.
    public init(trainingAt architecture: DetectorArchitecture) {
        self.init(outputWidth: architecture.inputWidth, outputHeight: architecture.inputHeight)
    }

    /// Letterboxing alone, to `architecture`'s input size: evaluation, calibration and the like.
    public static func evaluation(at architecture: DetectorArchitecture) -> AugmentationConfig {
        .evaluation(width: architecture.inputWidth, height: architecture.inputHeight)
    }
}
