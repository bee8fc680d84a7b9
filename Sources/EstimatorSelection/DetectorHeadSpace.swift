// The detector head space the reference architectures are drawn from, and its encoding for the
// model-based predictors.
import Estimation
import Randomness
import Vision

/// Choices for the four head fields of `DetectorArchitecture`; the backbone and neck stay at
/// the baseline. Every combination must be buildable (channels divisible by the groups).
public struct DetectorHeadSpace: Codable, Sendable, Hashable {
    public var kernelSizes: [Int]
    public var groups: [Int]
    public var channels: [Int]
    public var inputWidths: [Int]

    public init(kernelSizes: [Int] = [3, 5, 7], groups: [Int] = [1, 2, 4, 8], channels: [Int] = [24, 32, 48, 64, 96, 128],
                inputWidths: [Int] = [160, 192, 224, 256, 288, 320]) {
        self.kernelSizes = kernelSizes
        self.groups = groups
        self.channels = channels
        self.inputWidths = inputWidths
    }

    /// The smallest space holding every head value the architectures use.
    public init(spanning architectures: [DetectorArchitecture]) {
        func values(_ field: (DetectorArchitecture) -> Int) -> [Int] { Array(Set(architectures.map(field))).sorted() }
        self.init(kernelSizes: values(\.headKernelSize), groups: values(\.headGroups), channels: values(\.headChannels),
                  inputWidths: values(\.inputWidthPixels))
    }

    /// Adds the other space's values to this one's.
    public mutating func formUnion(_ other: DetectorHeadSpace) {
        func union(_ a: [Int], _ b: [Int]) -> [Int] { Array(Set(a).union(b)).sorted() }
        kernelSizes = union(kernelSizes, other.kernelSizes)
        groups = union(groups, other.groups)
        channels = union(channels, other.channels)
        inputWidths = union(inputWidths, other.inputWidths)
    }

    /// Every architecture of the space, in a fixed order (kernel, groups, channels, width).
    public func allArchitectures(base: DetectorArchitecture = .baseline) throws -> [DetectorArchitecture] {
        var result: [DetectorArchitecture] = []
        for k in kernelSizes { for g in groups { for c in channels { for w in inputWidths {
            var a = base
            a.headKernelSize = k; a.headGroups = g; a.headChannels = c; a.inputWidthPixels = w
            try a.validate()
            result.append(a)
        } } } }
        return result
    }

    /// `count` distinct architectures drawn uniformly without replacement (all of them when the
    /// space is smaller), the same for the same seed.
    public func sample(_ count: Int, seed: UInt64, base: DetectorArchitecture = .baseline) throws -> [DetectorArchitecture] {
        let all = try allArchitectures(base: base)
        var generator = SplitMix64(seed: seed)
        return generator.permutation(all.count).prefix(count).map { all[$0] }
    }

    /// Ordinal encoding of the four fields (each in [0, 1] over its listed choices), the input
    /// of the model-based predictors; log10 of parameters and multiply-accumulates are appended
    /// as derived features by the caller.
    public var encoding: ArchitectureEncoding {
        get throws {
            try ArchitectureEncoding(parameters: [
                .ordinal(name: "head_kernel", levels: kernelSizes.sorted().map { .integer($0) }),
                .ordinal(name: "head_groups", levels: groups.sorted().map { .integer($0) }),
                .ordinal(name: "head_channels", levels: channels.sorted().map { .integer($0) }),
                .ordinal(name: "input_width", levels: inputWidths.sorted().map { .integer($0) }),
            ])
        }
    }

    /// The encoding's configuration of one architecture.
    public static func configuration(_ a: DetectorArchitecture) -> [String: ArchitectureChoice] {
        ["head_kernel": .integer(a.headKernelSize), "head_groups": .integer(a.headGroups),
         "head_channels": .integer(a.headChannels), "input_width": .integer(a.inputWidthPixels)]
    }
}
