// The one seeded random number generator of EdgeNAS. Every stochastic routine (samplers, data
// synthesis and augmentation, bootstrap intervals, predictor initialisation) draws from it with
// an explicit seed, so the same seed gives the same trials, images and intervals in every
// process and on every platform. The standard library's `random(in:using:)` algorithms are not
// promised to stay the same across Swift versions, so the draws below use fixed, documented maths.
import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, passes BigCrush.
public struct SplitMix64: RandomNumberGenerator, Hashable, Sendable, Codable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator whose stream depends on every component (study seed, trial number, a purpose
    /// tag...). Mixing through the finaliser keeps nearby seeds unrelated.
    public init(seed: UInt64, _ components: UInt64...) {
        var mixed = SplitMix64.finalise(seed &+ 0x9E37_79B9_7F4A_7C15)
        for component in components {
            mixed = SplitMix64.finalise(mixed ^ SplitMix64.finalise(component &+ 0xD1B5_4A32_D192_ED03))
        }
        state = mixed
    }

    /// An independent generator for item `index` of a stream: lets workers on different threads
    /// produce exactly what a sequential run would, whatever order they run in.
    public static func derived(seed: UInt64, index: UInt64) -> SplitMix64 {
        var mixer = SplitMix64(seed: seed ^ (index &* 0xD1B5_4A32_D192_ED03))
        return SplitMix64(seed: mixer.next())
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.finalise(state)
    }

    private static func finalise(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform double in [range.lowerBound, range.upperBound).
    public mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + nextUnit() * (range.upperBound - range.lowerBound)
    }

    /// Uniform integer in 0..<bound (Lemire's multiply-shift; the bias is below 2^-40 for the
    /// bounds used here, far under what a bootstrap could detect).
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0, "nextIndex(below:) needs a positive bound")
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Fisher-Yates shuffle of indices 0..<count.
    public mutating func permutation(_ count: Int) -> [Int] {
        var values = Array(0..<count)
        if count < 2 { return values }
        for i in stride(from: count - 1, to: 0, by: -1) {
            values.swapAt(i, nextIndex(below: i + 1))
        }
        return values
    }
}

extension RandomNumberGenerator {
    /// Uniform in [0, 1) from the top 53 bits.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Standard normal draw (Box-Muller; the second value of the pair is discarded so the
    /// generator carries no hidden state). A zero first draw (probability 2^-53) is redrawn.
    public mutating func nextGaussian() -> Double {
        var u1 = nextUnit()
        while u1 <= 0 { u1 = nextUnit() }
        let u2 = nextUnit()
        return (-2 * Foundation.log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

/// Hashes a string to 64 bits (FNV-1a): a purpose tag for `SplitMix64(seed:_:)` that is stable
/// across processes, unlike `Hasher`.
public func stableHash(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x100_0000_01B3
    }
    return hash
}
