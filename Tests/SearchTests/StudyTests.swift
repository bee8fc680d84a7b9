import Foundation
import Testing
@testable import Search

/// Test objectives shared by the sampler tests.
enum Objectives {
    static func floats(_ names: [String], low: Double = -5, high: Double = 5) throws -> SearchSpace {
        try SearchSpace(Dictionary(uniqueKeysWithValues: names.map { ($0, Distribution.float(low: low, high: high)) }))
    }

    /// Sum of squares shifted off the centre (minimum 0 at x_i = 1.5).
    static func sphere(_ trial: TrialHandle) -> Evaluation {
        [trial.parameters.values.reduce(0) { $0 + pow($1.numericValue! - 1.5, 2) }]
    }

    /// A 2-objective problem with a convex front: f1 = x^2 + y^2, f2 = (x-2)^2 + (y-2)^2.
    static func biSphere(_ trial: TrialHandle) -> Evaluation {
        let x = trial["x"]!.numericValue!, y = trial["y"]!.numericValue!
        return [x * x + y * y, (x - 2) * (x - 2) + (y - 2) * (y - 2)]
    }
}

@Suite struct StudyTests {
    static func run(_ sampler: any Sampler, space: SearchSpace, directions: [StudyDirection] = [.minimize], seed: UInt64, trials: Int,
                    objective: @escaping @Sendable (TrialHandle) async throws -> Evaluation) async throws -> [FrozenTrial] {
        let study = try await Study(name: "s", space: space, directions: directions, storage: InMemoryStorage(), sampler: sampler, seed: seed)
        try await study.optimize(nTrials: trials, objective: objective)
        return try await study.trials()
    }

    @Test func onlyTheFirstOpeningCreatesTheStudy() async throws {
        let space = try Objectives.floats(["x", "y"])
        let storage = InMemoryStorage()
        let openings = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask { try await Study(name: "s", space: space, directions: [.minimize], storage: storage).wasCreated }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(openings.filter { $0 }.count == 1)
    }

    @Test func askTellAndBaselineFirst() async throws {
        let space = try Objectives.floats(["x", "y"])
        let study = try await Study(name: "s", space: space, directions: [.minimize], storage: InMemoryStorage(), sampler: RandomSampler(), seed: 3)
        try await study.enqueue(["x": .double(1.5), "y": .double(1.5)])
        let first = try await study.ask()
        #expect(first.number == 0 && first.parameters == ["x": .double(1.5), "y": .double(1.5)])
        try await study.tell(first, Objectives.sphere(first))
        // A partial baseline is completed by the sampler.
        try await study.enqueue(["x": .double(0)])
        let second = try await study.ask()
        #expect(second["x"] == .double(0) && second["y"] != nil)
        await #expect(throws: StudyError.wrongValueCount(trial: 1, expected: 1, got: 2)) { try await study.tell(second, [1, 2]) }
        await #expect(throws: StudyError.notAFailureState(.complete)) { try await study.tell(second, state: .complete) }
        try await study.tell(second, [4])
        let best = try await study.bestTrial()
        #expect(best?.number == 0 && best?.values == [0])
        await #expect(throws: StudyError.self) { try await study.enqueue(["x": .double(99)]) }
    }

    @Test func feasibleTrialsRankFirst() async throws {
        let space = try Objectives.floats(["x"])
        let study = try await Study(name: "s", space: space, directions: [.minimize], storage: InMemoryStorage(), sampler: RandomSampler(), seed: 1)
        let a = try await study.ask()
        try await study.tell(a, Evaluation(values: [0], constraints: [1]))
        let b = try await study.ask()
        try await study.tell(b, Evaluation(values: [5], constraints: [-1]))
        #expect(try await study.bestTrial()?.number == 1)
    }

    @Test func prunedAndFailedTrials() async throws {
        let space = try Objectives.floats(["x"])
        let study = try await Study(name: "s", space: space, directions: [.minimize], storage: InMemoryStorage(), sampler: RandomSampler(),
                                    pruner: PercentilePruner.median(startupTrials: 0), seed: 1)
        struct Boom: Error {}
        try await study.optimize(nTrials: 6, catchErrors: true) { trial in
            if trial.number == 0 { throw Boom() }
            try await trial.report(step: 0, value: Double(trial.number))
            if try await trial.shouldPrune() { throw TrialPruned() }
            return [Double(trial.number)]
        }
        let states = try await study.trials().map(\.state)
        // Trial 1 completes; every later one reports a worse value than the median and is pruned.
        #expect(states == [.failed, .complete, .pruned, .pruned, .pruned, .pruned])
        let pruned = try await study.trials(states: [.pruned])
        #expect(pruned[0].values == [2])
    }

    /// A worker that missed its heartbeats loses its trial to another worker; when it finishes
    /// late (with a result or an error) it drops what it found and goes on, without throwing.
    @Test func aTrialTakenOverElsewhereIsDroppedQuietly() async throws {
        let space = try Objectives.floats(["x"])
        let storage = InMemoryStorage()
        let study = try await Study(name: "s", space: space, directions: [.minimize], storage: storage, sampler: RandomSampler(), seed: 1)
        struct Boom: Error {}
        for catchErrors in [false, true] {
            for fails in [false, true] {
                try await study.optimize(nTrials: 1, catchErrors: catchErrors) { trial in
                    try await storage.finishTrial(trialID: trial.id, state: .failed, values: nil, constraints: nil)
                    if fails { throw Boom() }
                    return [1]
                }
            }
        }
        let trials = try await study.trials()
        #expect(trials.count == 4 && trials.allSatisfy { $0.state == .failed && $0.userAttributes["error"] == nil })
        try await study.optimize(nTrials: 1) { _ in [2] }
        #expect(try await study.trials(states: [.complete]).map(\.values) == [[2]])
    }

    @Test func badObjectiveResultsFailTheTrial() async throws {
        let space = try Objectives.floats(["x"])
        let study = try await Study(name: "s", space: space, directions: [.minimize], storage: InMemoryStorage(), sampler: RandomSampler(), seed: 1)
        try await study.optimize(nTrials: 2, catchErrors: true) { trial in trial.number == 0 ? [1, 2] : [.nan] }
        let trials = try await study.trials()
        #expect(trials.map(\.state) == [.failed, .failed])
        #expect(trials.allSatisfy { $0.userAttributes["error"] != nil })
        await #expect(throws: StudyError.wrongValueCount(trial: 2, expected: 1, got: 0)) {
            try await study.optimize(nTrials: 1) { _ in [] }
        }
    }

    @Test func gridExhaustsTheSpaceOnceEvenWithWorkers() async throws {
        let space = try SearchSpaceTests.conditionalSpace()
        let study = try await Study(name: "g", space: space, directions: [.minimize], storage: InMemoryStorage(), sampler: GridSampler(), seed: 5)
        let baseline: [String: ParameterValue] = ["block": .string("plain"), "kernel": .int(3)]
        try await study.enqueue(baseline)
        try await study.optimize(nTrials: 100, workers: 4) { _ in [0] }
        let complete = try await study.trials(states: [.complete])
        #expect(complete.count == 12)
        #expect(Set(complete.map(\.parameters)) == Set((0..<12).map { space.gridPoint(at: $0)! }))
        #expect(complete[0].parameters == baseline)
    }

    @Test func staleTrialsAreRequeuedOnAsk() async throws {
        let space = try Objectives.floats(["x"])
        let study = try await Study(name: "h", space: space, directions: [.minimize], storage: InMemoryStorage(), sampler: RandomSampler(),
                                    seed: 1, staleTrialTimeout: 0.2)
        let lost = try await study.ask()
        try await Task.sleep(for: .milliseconds(400))
        let retried = try await study.ask()
        #expect(retried.parameters == lost.parameters && retried.number == 1)
        #expect(try await study.trials(states: [.failed]).map(\.id) == [lost.id])
    }

    static let samplers: [any Sampler] = [
        RandomSampler(), GridSampler(), TPESampler(), TPESampler(multivariate: true), TPESampler(constantLiar: true),
        NSGAIISampler(populationSize: 8), SobolSampler(), SobolSampler(scrambled: false), GPSampler(), AutoSampler(budget: 30),
    ]

    @Test(arguments: samplers.indices) func sameSeedSameTrials(index: Int) async throws {
        let sampler = Self.samplers[index]
        let space = try SearchSpace([
            SearchParameter("x", .float(low: -2, high: 2, step: 0.5)),
            SearchParameter("n", .int(low: 1, high: 64, log: true)),
            SearchParameter("op", .categorical([.string("conv"), .string("pool"), .string("skip")])),
        ])
        let objective: @Sendable (TrialHandle) -> Evaluation = { t in
            [pow(t["x"]!.numericValue! - 0.5, 2) + log(t["n"]!.numericValue!) + (t["op"] == .string("conv") ? 0 : 1),
             abs(t["x"]!.numericValue!) + (t["op"] == .string("pool") ? 0 : 0.5)]
        }
        let a = try await Self.run(sampler, space: space, directions: [.minimize, .minimize], seed: 11, trials: 30, objective: objective)
        let b = try await Self.run(sampler, space: space, directions: [.minimize, .minimize], seed: 11, trials: 30, objective: objective)
        let c = try await Self.run(sampler, space: space, directions: [.minimize, .minimize], seed: 12, trials: 30, objective: objective)
        #expect(a.map(\.parameters) == b.map(\.parameters), "\(sampler.name)")
        if sampler.name != "sobol" { // unscrambled Sobol is the same sequence whatever the seed
            #expect(a.map(\.parameters) != c.map(\.parameters), "\(sampler.name) ignores the seed")
        }
        for trial in a { #expect(throws: Never.self) { try space.validate(trial.parameters) } }
    }

    /// Mean best value over seeds: a model-based sampler must clearly beat random search.
    @Test(arguments: ["tpe", "tpe-multivariate", "gp"]) func modelBasedBeatsRandom(name: String) async throws {
        let space = try Objectives.floats(["a", "b", "c"])
        let sampler: any Sampler = switch name {
        case "tpe": TPESampler()
        case "tpe-multivariate": TPESampler(multivariate: true)
        default: GPSampler()
        }
        let trials = name == "gp" ? 30 : 60
        var model = 0.0, random = 0.0
        for seed in 0..<6 as Range<UInt64> {
            let m = try await Self.run(sampler, space: space, seed: seed, trials: trials) { Objectives.sphere($0) }
            let r = try await Self.run(RandomSampler(), space: space, seed: seed, trials: trials) { Objectives.sphere($0) }
            model += m.compactMap { $0.values?[0] }.min()!
            random += r.compactMap { $0.values?[0] }.min()!
        }
        #expect(model < 0.6 * random, "\(name): mean best \(model / 6) vs random \(random / 6)")
    }

    /// On a 2-objective problem, MOTPE, NSGA-II and GP (EHVI) reach a larger hypervolume than random search.
    @Test(arguments: ["tpe", "nsga2", "gp"]) func multiObjectiveBeatsRandom(name: String) async throws {
        let space = try Objectives.floats(["x", "y"], low: -2, high: 4)
        let sampler: any Sampler = switch name {
        case "tpe": TPESampler()
        case "nsga2": NSGAIISampler(populationSize: 10)
        default: GPSampler()
        }
        let trials = name == "gp" ? 30 : 80
        var model = 0.0, random = 0.0
        for seed in 0..<4 as Range<UInt64> {
            let m = try await Self.run(sampler, space: space, directions: [.minimize, .minimize], seed: seed, trials: trials) { Objectives.biSphere($0) }
            let r = try await Self.run(RandomSampler(), space: space, directions: [.minimize, .minimize], seed: seed, trials: trials) { Objectives.biSphere($0) }
            model += Pareto.hypervolume(m.compactMap(\.values), reference: [10, 10])
            random += Pareto.hypervolume(r.compactMap(\.values), reference: [10, 10])
        }
        #expect(model > random, "\(name): mean hypervolume \(model / 4) vs random \(random / 4)")
    }
}
