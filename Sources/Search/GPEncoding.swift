// The unit-cube encoding `GPSampler` models assignments in.
import Foundation
import Randomness

/// Unit-cube encoding of assignments: one coordinate per numeric parameter, one-hot per
/// categorical; inactive parameters sit at the centre (numbers) or all zeros (categories).
struct UnitEncoder {
    let space: SearchSpace
    let width: Int

    init(space: SearchSpace) {
        self.space = space
        width = space.parameters.reduce(0) { total, p in
            if case .categorical(let choices) = p.distribution { return total + choices.count }
            return total + 1
        }
    }

    func encode(_ assignment: [String: ParameterValue]) -> [Double] {
        var x: [Double] = []
        x.reserveCapacity(width)
        for parameter in space.parameters {
            let value = assignment[parameter.name]
            if case .categorical(let choices) = parameter.distribution {
                for choice in choices { x.append(choice == value ? 1 : 0) }
            } else {
                x.append(value.map { parameter.distribution.toUnit($0) } ?? 0.5)
            }
        }
        return x
    }

    /// For each encoded coordinate, the parameter it belongs to: a categorical's one-hot
    /// coordinates share one length scale, so that the kernel sees "same or different
    /// category" (a Hamming distance, as Optuna's GP does) with one hyperparameter per
    /// parameter rather than one per category, which 100 trials cannot fit.
    var lengthScaleGroups: [Int] {
        space.parameters.enumerated().flatMap { index, parameter -> [Int] in
            if case .categorical(let choices) = parameter.distribution { return Array(repeating: index, count: choices.count) }
            return [index]
        }
    }

    /// Every assignment that differs from `assignment` in one active categorical parameter;
    /// parameters this activates are drawn at random, those it deactivates are dropped.
    func categoricalNeighbours(of assignment: [String: ParameterValue], rng: inout SplitMix64) -> [[String: ParameterValue]] {
        space.parameters.flatMap { parameter -> [[String: ParameterValue]] in
            guard case .categorical(let choices) = parameter.distribution, let current = assignment[parameter.name] else { return [] }
            return choices.filter { $0 != current }.map { choice in
                var result: [String: ParameterValue] = [:]
                for other in space.parameters where space.isActive(other, in: result) {
                    result[other.name] = other.name == parameter.name ? choice : (assignment[other.name] ?? other.distribution.sampleUniform(using: &rng))
                }
                return result
            }
        }
    }

    var hasCategorical: Bool {
        space.parameters.contains { if case .categorical = $0.distribution { return true } else { return false } }
    }

    var hasNumeric: Bool {
        space.parameters.contains { if case .categorical = $0.distribution { return false } else { return true } }
    }

    /// Encoded positions of the numeric parameters active in `assignment`.
    func numericCoordinates(of assignment: [String: ParameterValue]) -> [Int] {
        var result: [Int] = []
        var position = 0
        for parameter in space.parameters {
            if case .categorical(let choices) = parameter.distribution {
                position += choices.count
                continue
            }
            if assignment[parameter.name] != nil { result.append(position) }
            position += 1
        }
        return result
    }

    /// Numeric values read back from an encoded point (snapped to their grids); categories
    /// and which parameters are active come from `base`.
    func decode(_ x: [Double], categoriesFrom base: [String: ParameterValue]) -> [String: ParameterValue] {
        var result = base
        var position = 0
        for parameter in space.parameters {
            if case .categorical(let choices) = parameter.distribution {
                position += choices.count
                continue
            }
            if base[parameter.name] != nil { result[parameter.name] = parameter.distribution.fromUnit(x[position]) }
            position += 1
        }
        return result
    }

    /// `assignment` with one of its active numeric parameters (if any) drawn afresh.
    func redrawingOneNumber(of assignment: [String: ParameterValue], rng: inout SplitMix64) -> [String: ParameterValue] {
        let numeric = space.parameters.filter { parameter in
            if case .categorical = parameter.distribution { return false }
            return assignment[parameter.name] != nil
        }
        guard !numeric.isEmpty else { return assignment }
        let parameter = numeric[rng.nextIndex(below: numeric.count)]
        var result = assignment
        result[parameter.name] = parameter.distribution.sampleUniform(using: &rng)
        return result
    }

    /// A neighbour: numbers moved by a Gaussian step in the unit cube, and one parameter's
    /// category (if any) redrawn with probability 1/number of parameters.
    func perturb(_ assignment: [String: ParameterValue], scale: Double, rng: inout SplitMix64) -> [String: ParameterValue] {
        var result: [String: ParameterValue] = [:]
        let p = 1 / Double(space.parameters.count)
        for parameter in space.parameters where space.isActive(parameter, in: result) {
            let distribution = parameter.distribution
            guard let value = assignment[parameter.name] else {
                result[parameter.name] = distribution.sampleUniform(using: &rng)
                continue
            }
            if case .categorical = distribution {
                result[parameter.name] = rng.nextUnit() < p ? distribution.sampleUniform(using: &rng) : value
            } else {
                let u = distribution.toUnit(value) + scale * rng.nextGaussian()
                result[parameter.name] = distribution.fromUnit(min(max(u, 0), 1))
            }
        }
        return result
    }
}
