// Seeded randomness for resampling, bootstrap and model initialisation.
//
// Every stochastic routine in Estimation takes an explicit seed so that the same seed gives the
// same model and the same confidence interval on every platform; the standard library's
// `Int.random(in:)` algorithm is not promised to stay the same across Swift versions, so the
// helpers below draw integers and doubles with fixed, documented maths.
import Foundation

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and passes BigCrush; enough for bootstrap
/// resampling and weight initialisation.
public struct EstimationRandomGenerator: RandomNumberGenerator, Sendable, Hashable, Codable {
    public private(set) var state: UInt64

    public init(seed: UInt64) {
        state = seed
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform double in [0, 1) built from the top 53 bits.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform integer in 0..<bound (Lemire's multiply-shift; the bias is below 2^-40 for the
    /// bounds used here, far under what a bootstrap could detect).
    public mutating func nextIndex(below bound: Int) -> Int {
        precondition(bound > 0, "nextIndex(below:) needs a positive bound")
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Standard normal draw (Box-Muller; one of the pair is discarded to keep the state simple).
    public mutating func nextGaussian() -> Double {
        var u1 = nextUnit()
        while u1 <= 0 { u1 = nextUnit() }
        let u2 = nextUnit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Fisher-Yates shuffle of indices 0..<count.
    public mutating func permutation(_ count: Int) -> [Int] {
        var values = Array(0..<count)
        if count < 2 { return values }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = nextIndex(below: i + 1)
            values.swapAt(i, j)
        }
        return values
    }
}
