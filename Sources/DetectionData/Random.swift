/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, seedable generator. Every random choice in
/// this module draws from one, so the same seed always gives the same data and augmentations.
public struct SplitMix64: RandomNumberGenerator, Hashable, Sendable, Codable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// An independent generator for item `index` of a stream: lets workers on different threads
    /// produce exactly what a sequential run would, whatever order they run in.
    public static func derived(seed: UInt64, index: UInt64) -> SplitMix64 {
        var mixer = SplitMix64(seed: seed ^ (index &* 0xD1B5_4A32_D192_ED03))
        return SplitMix64(seed: mixer.next())
    }

    /// Uniform Double in [range.lowerBound, range.upperBound).
    public mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        let unit = Double(next() >> 11) * 0x1.0p-53
        return range.lowerBound + unit * (range.upperBound - range.lowerBound)
    }
}
