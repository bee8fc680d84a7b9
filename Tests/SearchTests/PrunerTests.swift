import Foundation
import Testing
@testable import Search

@Suite struct PrunerTests {
    /// A trial with a learning curve: value(step) for steps 0..<steps.
    static func trial(_ number: Int, state: TrialState, steps: Int, curve: (Int) -> Double) -> FrozenTrial {
        var intermediate: [Int: Double] = [:]
        for step in 0..<steps { intermediate[step] = curve(step) }
        return FrozenTrial(id: number, number: number, state: state, intermediateValues: intermediate)
    }

    /// Five completed curves 10 (i + 1) / (step + 1), i = 0...4: median at step s is 30 / (s + 1).
    static let finished = (0..<5).map { i in trial(i, state: .complete, steps: 10) { 10 * Double(i + 1) / Double($0 + 1) } }

    @Test func medianPrunerOnSyntheticCurves() {
        let pruner = PercentilePruner.median()
        let bad = Self.trial(10, state: .running, steps: 3) { 100 / Double($0 + 1) }   // 33 vs median 10 at step 2
        let good = Self.trial(11, state: .running, steps: 3) { 1 / Double($0 + 1) }
        #expect(pruner.shouldPrune(trial: bad, studyTrials: Self.finished + [bad], direction: .minimize))
        #expect(!pruner.shouldPrune(trial: good, studyTrials: Self.finished + [good], direction: .minimize))
        // Too few completed trials, or still warming up: no pruning.
        #expect(!pruner.shouldPrune(trial: bad, studyTrials: Array(Self.finished.prefix(4)) + [bad], direction: .minimize))
        #expect(!PercentilePruner.median(warmupSteps: 5).shouldPrune(trial: bad, studyTrials: Self.finished + [bad], direction: .minimize))
        // Maximising, the good curve is now the bad one.
        #expect(pruner.shouldPrune(trial: good, studyTrials: Self.finished + [good], direction: .maximize))
        #expect(!pruner.shouldPrune(trial: bad, studyTrials: Self.finished + [bad], direction: .maximize))
        // Exactly at the median is kept (Optuna prunes strictly worse).
        let median = Self.trial(12, state: .running, steps: 3) { 30 / Double($0 + 1) }
        #expect(!pruner.shouldPrune(trial: median, studyTrials: Self.finished + [median], direction: .minimize))
    }

    @Test func percentileInterpolatesLikeNumpy() {
        #expect(interpolatedPercentile([1, 2, 3, 4], 50) == 2.5)
        #expect(interpolatedPercentile([1, 2, 3, 4], 25) == 1.75)
    }

    @Test func successiveHalvingKeepsTheTopFraction() {
        // eta = 2, rungs at steps 1, 2, 4. Peers' values at step 1: 1, 2, 3, 4.
        let peers = (0..<4).map { i in Self.trial(i, state: .complete, steps: 5) { _ in Double(i + 1) } }
        let pruner = SuccessiveHalvingPruner(minResource: 1, reductionFactor: 2)
        // Competing at rung 0: [1, 2, 3, 4, v]; top 5 / 2 = 2 go on, so v must be <= 2.
        let slow = Self.trial(9, state: .running, steps: 2) { _ in 3.5 }
        let fast = Self.trial(9, state: .running, steps: 2) { _ in 1.5 }
        #expect(pruner.shouldPrune(trial: slow, studyTrials: peers + [slow], direction: .minimize))
        #expect(!pruner.shouldPrune(trial: fast, studyTrials: peers + [fast], direction: .minimize))
        // Before the first rung nothing is decided.
        let early = Self.trial(9, state: .running, steps: 1) { _ in 100 }
        #expect(!pruner.shouldPrune(trial: early, studyTrials: peers + [early], direction: .minimize))
        // A rung already passed is not judged again: at step 2 only rung 1 counts, where
        // competing values [1, 2, 3, 4, 1.5] keep 1.5.
        let passed = FrozenTrial(id: 9, number: 9, state: .running, intermediateValues: [1: 1.5, 2: 1.5])
        #expect(!pruner.shouldPrune(trial: passed, studyTrials: peers + [passed], direction: .minimize))
        // With the rate raised to 1, the first rung is at step 2.
        let later = SuccessiveHalvingPruner(minResource: 1, reductionFactor: 2, minEarlyStoppingRate: 1)
        #expect(!later.shouldPrune(trial: slow.withSteps([0: 3.5, 1: 3.5]), studyTrials: peers, direction: .minimize))
    }

    @Test func hyperbandBracketsFollowTheHyperbandBudget() {
        let pruner = HyperbandPruner(minResource: 1, maxResource: 27, reductionFactor: 3)
        // Resources 1, 3, 9, 27: four brackets with budgets ceil(4 * 3^s / (s + 1)), s = 3...0.
        #expect(pruner.bracketCount(maxResource: 27) == 4)
        #expect(pruner.bracketBudgets(count: 4) == [27, 12, 6, 4])
        let budgets = pruner.bracketBudgets(count: 4)
        let counts = (0..<4900).reduce(into: [0, 0, 0, 0]) { $0[pruner.bracketOf(trialNumber: $1, budgets: budgets)] += 1 }
        // Proportional to 27:12:6:4 of 49 (100 trials per unit), within sampling noise.
        for (i, expected) in [2700, 1200, 600, 400].enumerated() { #expect(abs(counts[i] - expected) < 150, "\(counts)") }
    }

    @Test func hyperbandComparesWithinABracketOnly() {
        let pruner = HyperbandPruner(minResource: 1, maxResource: 9, reductionFactor: 3)
        let budgets = pruner.bracketBudgets(count: pruner.bracketCount(maxResource: 9))
        let numbers = Array(0..<200)
        let bracket0 = numbers.filter { pruner.bracketOf(trialNumber: $0, budgets: budgets) == 0 }
        let others = numbers.filter { pruner.bracketOf(trialNumber: $0, budgets: budgets) != 0 }
        // Good peers in other brackets do not prune a mediocre trial of bracket 0...
        let strangers = others.prefix(6).map { n in Self.trial(n, state: .complete, steps: 10) { _ in 0 } }
        let candidate = Self.trial(bracket0[6], state: .running, steps: 2) { _ in 5 }
        #expect(!pruner.shouldPrune(trial: candidate, studyTrials: strangers + [candidate], direction: .minimize))
        // ...but good peers of its own bracket do (rung 0 at step 1: top third of 7).
        let rivals = bracket0.prefix(6).map { n in Self.trial(n, state: .complete, steps: 10) { _ in 0 } }
        #expect(pruner.shouldPrune(trial: candidate, studyTrials: rivals + [candidate], direction: .minimize))
    }
}

extension FrozenTrial {
    func withSteps(_ values: [Int: Double]) -> FrozenTrial {
        var copy = self
        copy.intermediateValues = values
        return copy
    }
}
