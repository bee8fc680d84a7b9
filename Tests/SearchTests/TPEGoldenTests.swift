import Foundation
import Testing
import Randomness
@testable import Search

/// TPE's proposals are pinned to digests recorded before its speed work (commit b2b6e35):
/// the faster code must propose bit-identical parameters for a seed. The studies cover
/// conditional, stepped, log-scaled and categorical parameters, constraints, pruned
/// trials, one and two objectives, and both the independent and the multivariate model.
@Suite struct TPEGoldenTests {
    static func space() throws -> SearchSpace {
        try SearchSpace([
            SearchParameter("block", .categorical([.string("mbconv"), .string("plain")])),
            SearchParameter("expansion", .int(low: 2, high: 6, step: 2), condition: .init(parent: "block", values: [.string("mbconv")])),
            SearchParameter("rate", .float(low: 1e-4, high: 1e-1, log: true)),
            SearchParameter("width", .float(low: 0.25, high: 2, step: 0.25)),
            SearchParameter("x", .float(low: -2, high: 3)),
            SearchParameter("depth", .int(low: 1, high: 12)),
        ])
    }

    /// Runs `trials` ask/tell rounds; every 7th trial is pruned after one report, and a
    /// constraint makes part of the space infeasible. Returns a digest of every proposal.
    static func digest(_ sampler: TPESampler, objectives: Int, seed: UInt64, trials: Int) async throws -> String {
        let directions: [StudyDirection] = objectives == 1 ? [.minimize] : [.minimize, .maximize]
        let study = try await Study(name: "golden", space: try space(), directions: directions, storage: InMemoryStorage(), sampler: sampler, seed: seed)
        for number in 0..<trials {
            let trial = try await study.ask()
            let x = trial["x"]!.numericValue!, rate = trial["rate"]!.numericValue!
            let width = trial["width"]!.numericValue!, depth = trial["depth"]!.numericValue!
            let expansion = trial["expansion"]?.numericValue ?? 1
            let plain = trial["block"] == .string("plain") ? 0.3 : 0
            let loss = (x - 0.7) * (x - 0.7) + abs(Foundation.log10(rate) + 2.5) + 0.1 * abs(width - 1.25) + plain + 0.05 * expansion
            if number % 7 == 6 {
                try await trial.report(step: 0, value: loss)
                try await study.tell(trial, state: .pruned)
                continue
            }
            let values = objectives == 1 ? [loss] : [loss, depth * width]
            try await study.tell(trial, Evaluation(values: values, constraints: [depth - 10]))
        }
        let lines = try await study.trials().map { trial in
            trial.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        return String(stableHash(lines.joined(separator: "\n")), radix: 16)
    }

    @Test(arguments: [
        (false, 1, "af9a17e056d26a79"), (true, 1, "a80d9dcdd0f4fbb"), (false, 2, "33747893ae563f48"), (true, 2, "11e9146513c78ff4"),
    ])
    func proposalsAreUnchanged(multivariate: Bool, objectives: Int, expected: String) async throws {
        let sampler = TPESampler(multivariate: multivariate)
        let digest = try await Self.digest(sampler, objectives: objectives, seed: 11, trials: 90)
        #expect(digest == expected, "multivariate \(multivariate), \(objectives) objective(s)")
    }

    /// Two workers' worth of running trials: each ask sees the previous trial running.
    @Test func constantLiarProposalsAreUnchanged() async throws {
        let study = try await Study(name: "golden", space: try Self.space(), directions: [.minimize, .minimize], storage: InMemoryStorage(),
                                    sampler: TPESampler(multivariate: true, constantLiar: true), seed: 5)
        var pending = try await study.ask()
        for _ in 0..<60 {
            let next = try await study.ask()
            let x = pending["x"]!.numericValue!, depth = pending["depth"]!.numericValue!
            try await study.tell(pending, [(x - 0.7) * (x - 0.7), depth])
            pending = next
        }
        let lines = try await study.trials().map { trial in
            trial.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        #expect(String(stableHash(lines.joined(separator: "\n")), radix: 16) == "809652cc903ccbd0")
    }

    /// The bucket sort behind the kernel widths orders like a stable comparison sort,
    /// including ties (grid values) and values at the bounds.
    @Test func stableOrderMatchesAStableSort() {
        var rng = SplitMix64(seed: 21)
        for (count, grid) in [(1, 0), (2, 0), (40, 0), (1_000, 0), (300, 7), (500, 50)] {
            let values = (0..<count).map { _ in grid > 0 ? Double(rng.next() % UInt64(grid + 1)) / Double(grid) * 4 - 1 : rng.nextUnit() * 4 - 1 }
            let expected = values.indices.sorted { values[$0] < values[$1] }
            #expect(stableOrder(values, low: -1, high: 3) == expected, "\(count) values, grid \(grid)")
        }
    }

    /// The windowed density of a one-parameter mixture with many kernels is the full
    /// pass's, to the bit: uniform and clustered centres (wide kernels in the gaps), points
    /// at the bounds, between clusters and far from every kernel.
    @Test func nearbyKernelDensityMatchesTheFullPass() {
        var rng = SplitMix64(seed: 5)
        let parameter = SearchParameter("x", .float(low: -1, high: 3))
        for (count, clustered) in [(64, false), (300, true), (1_000, false), (1_000, true)] {
            let values: [Double?] = (0..<count).map { _ in
                clustered ? [-0.8, 0.4, 2.9][Int(rng.next() % 3)] + 0.01 * rng.nextUnit() : rng.nextUnit() * 4 - 1
            }
            let weights = ParzenEstimator.KernelWeights(TPESampler.defaultWeights(count), priorWeight: 1)
            let estimator = ParzenEstimator(parameters: [parameter], columns: [.numeric(values)], weights: weights)
            #expect(estimator.nearbyKernels != nil)
            guard case .numeric(let mus, let sigmas, let logNormalisers, _, _, _, _) = estimator.components[0] else { return }
            var scratch = ParzenEstimator.DensityScratch(kernels: count + 1)
            let points = [-1, 3, 1.7, 0.405] + (0..<200).map { _ in rng.nextUnit() * 4 - 1 }
            for x in points {
                let terms = (0...count).map { k in
                    let z = (x - mus[k]) / sigmas[k]
                    return estimator.logWeights[k] + (-0.5 * z * z - Gaussian.logSqrt2Pi - logNormalisers[k])
                }
                let expected = logSumExp(terms)
                let windowed = estimator.logDensity([x], scratch: &scratch)
                #expect(windowed.bitPattern == expected.bitPattern, "\(count) kernels, x = \(x)")
            }
            #expect(scratch.marks.allSatisfy { $0 == 0 })
        }
    }

    /// Columns built on the previous ask's are those converted from scratch, whether the
    /// history grew, a trial's parameters changed in the middle or the space changed.
    @Test func columnCacheMatchesConversion() throws {
        let space = try Self.space()
        var rng = SplitMix64(seed: 13)
        var trials = (0..<50).map { i in FrozenTrial(id: i, number: i, state: .complete, parameters: space.sampleUniform(using: &rng)) }
        func check(_ parameters: [SearchParameter]) {
            let cached = ColumnCache.shared.columns(parameters, in: trials)
            let converted = ParzenEstimator.Column.all(parameters, in: trials)
            #expect(cached.map { "\($0)" } == converted.map { "\($0)" })
        }
        check(space.parameters)
        trials.append(FrozenTrial(id: 50, number: 50, state: .complete, parameters: space.sampleUniform(using: &rng)))
        check(space.parameters)
        trials[20].parameters = space.sampleUniform(using: &rng)
        check(space.parameters)
        trials.removeLast(3)
        check(space.parameters)
        check(Array(space.parameters.reversed()))
    }

    /// The two-objective staircase behind greedy selection and MOTPE weights gives the
    /// volumes `Pareto.hypervolume` gives for the same sets, to the bit, ties included.
    @Test func hypervolumeStaircaseMatchesHypervolume() {
        var rng = SplitMix64(seed: 8)
        for count in [1, 2, 5, 30] {
            // A coarse grid makes ties and duplicates common; one point lies beyond the reference.
            var points = (0..<count).map { _ in [Double(rng.next() % 6) / 5, Double(rng.next() % 6) / 5] }
            points.append([1.5, 0.1])
            let reference = [1.1, 1.1]
            var staircase = HypervolumeStaircase(reference: reference)
            for (k, p) in points.enumerated() {
                #expect(staircase.volume(adding: (p[0], p[1])) == Pareto.hypervolume(Array(points[...k]), reference: reference))
                staircase.insert((p[0], p[1]))
            }
            for (k, p) in points.enumerated() {
                let others = points.indices.filter { $0 != k }.map { points[$0] }
                #expect(staircase.volume(excluding: (p[0], p[1])) == Pareto.hypervolume(others, reference: reference))
            }
        }
    }
}
