// The detector head space: the four head fields a search varies, and members drawn from it.
import Randomness

/// Choices for the four head fields of `DetectorArchitecture`; the backbone and neck stay at
/// the base model's. Every combination must be buildable (channels divisible by the groups).
/// The one definition of the seed's head space (`seed`): the search's default space, the
/// selection's references and the latency predictor's samples are all drawn from it.
public struct DetectorHeadSpace: Codable, Sendable, Hashable {
    public var kernelSizes: [Int]
    public var groups: [Int]
    public var channels: [Int]
    public var inputWidths: [Int]

    public init(kernelSizes: [Int], groups: [Int], channels: [Int], inputWidths: [Int]) {
        self.kernelSizes = kernelSizes
        self.groups = groups
        self.channels = channels
        self.inputWidths = inputWidths
    }

    /// The seed's head space: kernel {3, 5}, groups {1, 2, 4, 8}, channels 24...96 and input
    /// width 220...320 around the baseline k5-g1-c96-w320. Channels go in steps of 8, so every
    /// count is divisible by every group count. The width is on the network's 32-pixel stride
    /// (224...320): the network rounds any width to it (`inputWidth`), so finer steps
    /// would only repeat networks under other names.
    public static let seed = DetectorHeadSpace(
        kernelSizes: [3, 5], groups: [1, 2, 4, 8], channels: Array(stride(from: 24, through: 96, by: 8)),
        inputWidths: Array(stride(from: 224, through: 320, by: 32)))

    /// Members of the space.
    public var size: Int { kernelSizes.count * groups.count * channels.count * inputWidths.count }

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
            var a = base.atInputWidth(w)
            a.headKernelSize = k; a.headGroups = g; a.headChannels = c
            try a.validate()
            result.append(a)
        } } } }
        return result
    }

    /// `count` distinct architectures drawn uniformly without replacement (all of them when the
    /// space is smaller), the same for the same seed: reference architectures, and the
    /// samples a latency predictor is fitted and checked on.
    public func sample(_ count: Int, seed: UInt64, base: DetectorArchitecture = .baseline) throws -> [DetectorArchitecture] {
        let all = try allArchitectures(base: base)
        var generator = SplitMix64(seed: seed)
        return generator.permutation(all.count).prefix(count).map { all[$0] }
    }
}
