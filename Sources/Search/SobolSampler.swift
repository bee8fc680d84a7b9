import Foundation
import Randomness

/// Quasi-random sampling with a Sobol sequence: trial n takes point n of the sequence
/// (one dimension per parameter, in the space's canonical order), mapped through each
/// distribution's unit encoding. Points fill the space more evenly than random ones.
///
/// `scrambled` applies a seeded random digital shift (XOR of every coordinate's bits with
/// a per-dimension random word), which keeps the net structure and makes runs with
/// different seeds differ. Direction numbers are Joe and Kuo's (new-joe-kuo-6.21201) for
/// the first 21 dimensions; larger spaces are not supported.
public struct SobolSampler: Sampler {
    public var scrambled: Bool

    public init(scrambled: Bool = true) {
        self.scrambled = scrambled
    }

    public var name: String { scrambled ? "sobol-scrambled" : "sobol" }

    /// (degree s, polynomial coefficients a, initial m_1...m_s) for dimensions 2...21.
    static let directionTable: [(Int, UInt32, [UInt32])] = [
        (1, 0, [1]), (2, 1, [1, 3]), (3, 1, [1, 3, 1]), (3, 2, [1, 1, 1]), (4, 1, [1, 1, 3, 3]),
        (4, 4, [1, 3, 5, 13]), (5, 2, [1, 1, 5, 5, 17]), (5, 4, [1, 1, 5, 5, 5]), (5, 7, [1, 1, 7, 11, 19]),
        (5, 11, [1, 1, 5, 1, 1]), (5, 13, [1, 1, 1, 3, 11]), (5, 14, [1, 3, 5, 5, 31]), (6, 1, [1, 3, 3, 9, 7, 49]),
        (6, 13, [1, 1, 1, 15, 21, 21]), (6, 16, [1, 3, 1, 13, 27, 49]), (6, 19, [1, 1, 1, 15, 7, 5]),
        (6, 22, [1, 3, 1, 15, 13, 25]), (6, 25, [1, 1, 5, 5, 19, 61]), (7, 1, [1, 3, 7, 11, 23, 15, 103]),
        (7, 4, [1, 3, 7, 13, 13, 15, 69]),
    ]

    static let maxDimensions = directionTable.count + 1
    static let bits = 32

    /// Direction words v_1...v_32 of one dimension (0-based; dimension 0 is van der Corput).
    static func directions(dimension: Int) -> [UInt32] {
        if dimension == 0 { return (1...bits).map { UInt32(1) << (bits - $0) } }
        let (s, a, initial) = directionTable[dimension - 1]
        var m = initial
        for k in s..<bits {
            var next = m[k - s] ^ (m[k - s] << UInt32(s))
            for j in 1..<s where (a >> UInt32(s - 1 - j)) & 1 == 1 {
                next ^= m[k - j] << UInt32(j)
            }
            m.append(next)
        }
        return (0..<bits).map { m[$0] << UInt32(bits - 1 - $0) }
    }

    /// Point `index` of the sequence in `dimensions` dimensions (Gray-code order).
    static func point(_ index: UInt32, dimensions: Int) -> [UInt32] {
        let gray = index ^ (index >> 1)
        return (0..<dimensions).map { d in
            let v = directions(dimension: d)
            var x: UInt32 = 0
            for k in 0..<bits where (gray >> UInt32(k)) & 1 == 1 { x ^= v[k] }
            return x
        }
    }

    public func sample(space: SearchSpace, context: SamplingContext) throws -> [String: ParameterValue] {
        let dimensions = space.parameters.count
        guard dimensions <= Self.maxDimensions else {
            throw SamplerError.unsupportedSpace(sampler: name, reason: "\(dimensions) parameters; at most \(Self.maxDimensions) supported")
        }
        var words = Self.point(UInt32(truncatingIfNeeded: context.trialNumber), dimensions: dimensions)
        if scrambled {
            var rng = SplitMix64(seed: context.seed, stableHash("sobol-shift"))
            for d in words.indices { words[d] ^= UInt32(truncatingIfNeeded: rng.next()) }
        }
        var result: [String: ParameterValue] = [:]
        for (d, parameter) in space.parameters.enumerated() where space.isActive(parameter, in: result) {
            // The centre of the word's cell, so that unscrambled point 0 is not on a bound.
            let u = (Double(words[d]) + 0.5) / 4_294_967_296.0
            result[parameter.name] = parameter.distribution.fromUnit(u)
        }
        return result
    }
}
