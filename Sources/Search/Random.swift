import Foundation

/// A small, fast, seedable random number generator (SplitMix64).
///
/// Every random decision in Search goes through one of these, seeded from the study seed
/// and the trial number, so that two processes given the same history draw the same
/// numbers: samplers keep no hidden random state between calls.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// A generator whose stream depends on every component (study seed, trial number, a
    /// purpose tag...). Mixing through SplitMix's finaliser keeps nearby seeds unrelated.
    public init(seed: UInt64, _ components: UInt64...) {
        var mixed = SplitMix64.finalise(seed &+ 0x9E37_79B9_7F4A_7C15)
        for component in components {
            mixed = SplitMix64.finalise(mixed ^ SplitMix64.finalise(component &+ 0xD1B5_4A32_D192_ED03))
        }
        state = mixed
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
}

extension RandomNumberGenerator {
    /// Uniform in [0, 1) with 53 random bits.
    mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Standard normal draw (Box-Muller; one of the pair is discarded to stay stateless).
    mutating func nextGaussian() -> Double {
        let u1 = max(nextUnit(), .leastNonzeroMagnitude)
        let u2 = nextUnit()
        return (-2 * Foundation.log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

/// Hashes a string to 64 bits (FNV-1a); stable across processes, unlike `Hasher`.
func stableHash(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x100_0000_01B3
    }
    return hash
}
