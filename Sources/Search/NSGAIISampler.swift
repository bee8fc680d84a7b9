import Foundation
import Randomness

/// NSGA-II (Deb et al. 2002) over the trial history, without stored populations.
///
/// Trial n belongs to generation n / populationSize. Generation 0 is random. The parents of
/// generation g are the `populationSize` best completed trials of earlier generations by
/// non-domination rank (feasible before infeasible, then by total violation) and crowding
/// distance; since earlier parents are in that history this is NSGA-II's elitist
/// (mu + lambda) survival, recomputed by every worker from the same trials. Offspring come
/// from binary tournaments, SBX (numbers, in the unit cube) or uniform (categories)
/// crossover, and polynomial (numbers) or resampling (categories) mutation.
public struct NSGAIISampler: Sampler {
    public var populationSize: Int
    public var crossoverProbability: Double
    /// Per-parameter mutation probability; nil means 1 / number of parameters.
    public var mutationProbability: Double?
    public var sbxEta: Double
    public var mutationEta: Double

    public init(populationSize: Int = 50, crossoverProbability: Double = 0.9, mutationProbability: Double? = nil,
                sbxEta: Double = 15, mutationEta: Double = 20) {
        self.populationSize = max(2, populationSize)
        self.crossoverProbability = crossoverProbability
        self.mutationProbability = mutationProbability
        self.sbxEta = sbxEta
        self.mutationEta = mutationEta
    }

    public var name: String { "nsga2" }

    public func sample(space: SearchSpace, context: SamplingContext) -> [String: ParameterValue] {
        var rng = context.rng("nsga2")
        let generation = context.trialNumber / populationSize
        let earlier = context.completed.filter { $0.number / populationSize < generation }
        guard generation > 0, earlier.count >= 2 else { return space.sampleUniform(using: &rng) }
        let (parents, rank, crowding) = selectParents(earlier, directions: context.directions)

        func tournament() -> FrozenTrial {
            let a = Int(rng.next() % UInt64(parents.count)), b = Int(rng.next() % UInt64(parents.count))
            if rank[a] != rank[b] { return parents[rank[a] < rank[b] ? a : b] }
            return parents[crowding[a] >= crowding[b] ? a : b]
        }
        let first = tournament(), second = tournament()
        let crossover = rng.nextUnit() < crossoverProbability
        let mutation = mutationProbability ?? 1 / Double(space.parameters.count)
        var child: [String: ParameterValue] = [:]
        for parameter in space.parameters where space.isActive(parameter, in: child) {
            let distribution = parameter.distribution
            guard let a = first.parameters[parameter.name] else {
                child[parameter.name] = distribution.sampleUniform(using: &rng)
                continue
            }
            let b = second.parameters[parameter.name] ?? a
            var value = a
            if crossover {
                if case .categorical = distribution {
                    value = rng.nextUnit() < 0.5 ? a : b
                } else {
                    value = distribution.fromUnit(sbx(distribution.toUnit(a), distribution.toUnit(b), &rng))
                }
            }
            if rng.nextUnit() < mutation {
                if case .categorical = distribution {
                    value = distribution.sampleUniform(using: &rng)
                } else {
                    value = distribution.fromUnit(polynomialMutation(distribution.toUnit(value), &rng))
                }
            }
            child[parameter.name] = value
        }
        return child
    }

    /// The surviving population with each member's rank and crowding distance.
    func selectParents(_ trials: [FrozenTrial], directions: [StudyDirection]) -> ([FrozenTrial], [Int], [Double]) {
        let feasible = trials.filter(\.isFeasible)
        let infeasible = trials.filter { !$0.isFeasible }
            .sorted { violation($0) != violation($1) ? violation($0) < violation($1) : $0.number < $1.number }
        var parents: [FrozenTrial] = [], ranks: [Int] = [], crowding: [Double] = []
        let losses = feasible.map { lossVector($0.values!, directions) }
        // Only the fronts that fill the population are needed, not every trial's rank.
        var rank = 0
        for front in Pareto.leadingFronts(losses, minimumCount: populationSize) where parents.count < populationSize {
            let distances = Pareto.crowdingDistances(front.map { losses[$0] })
            // Most isolated first; ties by trial number so every worker agrees.
            let order = front.indices.sorted { distances[$0] != distances[$1] ? distances[$0] > distances[$1] : feasible[front[$0]].number < feasible[front[$1]].number }
            for position in order.prefix(populationSize - parents.count) {
                parents.append(feasible[front[position]])
                ranks.append(rank)
                crowding.append(distances[position])
            }
            rank += 1
        }
        for trial in infeasible.prefix(populationSize - parents.count) {
            parents.append(trial)
            ranks.append(rank)
            rank += 1
            crowding.append(0)
        }
        return (parents, ranks, crowding)
    }

    private func violation(_ trial: FrozenTrial) -> Double {
        (trial.constraints ?? []).reduce(0) { $0 + max(0, $1) }
    }

    /// Simulated binary crossover of two unit-cube coordinates; returns one child.
    func sbx(_ a: Double, _ b: Double, _ rng: inout SplitMix64) -> Double {
        let u = rng.nextUnit()
        let beta = u <= 0.5 ? pow(2 * u, 1 / (sbxEta + 1)) : pow(1 / (2 * (1 - u)), 1 / (sbxEta + 1))
        let child = rng.nextUnit() < 0.5 ? 0.5 * ((1 + beta) * a + (1 - beta) * b) : 0.5 * ((1 - beta) * a + (1 + beta) * b)
        return min(max(child, 0), 1)
    }

    /// Polynomial mutation of a unit-cube coordinate (Deb's bounded form).
    func polynomialMutation(_ x: Double, _ rng: inout SplitMix64) -> Double {
        let u = rng.nextUnit()
        let power = 1 / (mutationEta + 1)
        let delta: Double
        if u < 0.5 {
            let left = 2 * u + (1 - 2 * u) * pow(1 - x, mutationEta + 1)
            delta = pow(left, power) - 1
        } else {
            let right = 2 * (1 - u) + 2 * (u - 0.5) * pow(x, mutationEta + 1)
            delta = 1 - pow(right, power)
        }
        return min(max(x + delta, 0), 1)
    }
}
