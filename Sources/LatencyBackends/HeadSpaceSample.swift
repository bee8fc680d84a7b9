import Estimation
import Randomness
import Vision

/// Random members of the reference head search space (kernel 3 or 5, groups 1, 2, 4 or 8,
/// head channels 24...96 in steps of 8, input width 220...320), with the baseline backbone
/// and neck: the architectures a predictor is fit and checked on.
public enum HeadSpaceSample {
    public static let kernelSizes = [3, 5]
    public static let groups = [1, 2, 4, 8]
    /// Multiples of 8, so every group count divides them.
    public static let channels = Array(stride(from: 24, through: 96, by: 8))
    public static let widths = 220...320

    /// Members of the space.
    public static var size: Int { kernelSizes.count * groups.count * channels.count * widths.count }

    /// `count` (at most `size`) distinct architectures drawn uniformly with `seed` (the same
    /// seed, the same list).
    public static func draw(_ count: Int, seed: UInt64) -> [DetectorArchitecture] {
        precondition(count <= size, "the head space has only \(size) members")
        var generator = SplitMix64(seed: seed)
        var seen = Set<DetectorArchitecture>()
        var drawn: [DetectorArchitecture] = []
        while drawn.count < count {
            let architecture = DetectorArchitecture(
                headKernelSize: kernelSizes[generator.nextIndex(below: kernelSizes.count)],
                headGroups: groups[generator.nextIndex(below: groups.count)],
                headChannels: channels[generator.nextIndex(below: channels.count)],
                inputWidthPixels: widths.lowerBound + generator.nextIndex(below: widths.count))
            if seen.insert(architecture).inserted { drawn.append(architecture) }
        }
        return drawn
    }
}
