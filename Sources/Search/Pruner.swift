import Foundation
import Randomness

/// Decides whether a running trial should stop early, from its intermediate values and
/// those of the other trials. Like samplers, pruners keep no state between calls.
public protocol Pruner: Sendable {
    func shouldPrune(trial: FrozenTrial, studyTrials: [FrozenTrial], direction: StudyDirection) -> Bool
}

extension FrozenTrial {
    /// The latest reported step and its value.
    var lastIntermediate: (step: Int, value: Double)? {
        intermediateValues.max { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

/// Prunes a trial whose best intermediate value so far is worse than the median (or
/// another percentile) of the completed trials' values at the same step (Optuna's
/// MedianPruner / PercentilePruner).
public struct PercentilePruner: Pruner {
    public var percentile: Double
    /// No pruning until this many trials have completed.
    public var startupTrials: Int
    /// No pruning before this step.
    public var warmupSteps: Int
    /// Only check every `intervalSteps` steps after the warm-up.
    public var intervalSteps: Int
    /// No pruning unless at least this many completed trials reported the step.
    public var minTrials: Int

    public init(percentile: Double, startupTrials: Int = 5, warmupSteps: Int = 0, intervalSteps: Int = 1, minTrials: Int = 1) {
        self.percentile = percentile
        self.startupTrials = startupTrials
        self.warmupSteps = warmupSteps
        self.intervalSteps = intervalSteps
        self.minTrials = minTrials
    }

    /// The median rule: prune below the 50th percentile.
    public static func median(startupTrials: Int = 5, warmupSteps: Int = 0, intervalSteps: Int = 1, minTrials: Int = 1) -> PercentilePruner {
        PercentilePruner(percentile: 50, startupTrials: startupTrials, warmupSteps: warmupSteps, intervalSteps: intervalSteps, minTrials: minTrials)
    }

    public func shouldPrune(trial: FrozenTrial, studyTrials: [FrozenTrial], direction: StudyDirection) -> Bool {
        guard let (step, _) = trial.lastIntermediate else { return false }
        let completed = studyTrials.filter { $0.state == .complete }
        guard completed.count >= startupTrials, step >= warmupSteps else { return false }
        guard (step - warmupSteps) % max(1, intervalSteps) == 0 else { return false }
        let values = trial.intermediateValues.values
        let best = direction == .minimize ? values.min()! : values.max()!
        if best.isNaN { return true }
        let others = completed.compactMap { $0.intermediateValues[step] }.filter { !$0.isNaN }
        guard others.count >= minTrials, !others.isEmpty else { return false }
        // For maximisation the bad side is the low one: mirror the percentile.
        let q = direction == .minimize ? percentile : 100 - percentile
        let threshold = interpolatedPercentile(others, q)
        return direction == .minimize ? best > threshold : best < threshold
    }
}

/// numpy's default (linear interpolation) percentile.
func interpolatedPercentile(_ values: [Double], _ q: Double) -> Double {
    let sorted = values.sorted()
    let position = q / 100 * Double(sorted.count - 1)
    let lower = Int(position.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
    let fraction = position - Double(lower)
    return sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
}

/// Asynchronous successive halving (Li et al. 2018, Optuna semantics): rung r is reached at
/// step minResource * reductionFactor^(minEarlyStoppingRate + r); a trial reaching a rung
/// goes on only if its value there is in the top 1/reductionFactor of all trials that
/// reached that rung.
///
/// Stateless: a trial's value at a rung is its value at the first step it reported at or
/// past the rung. The check happens for the rungs crossed by the latest report, so call
/// `shouldPrune` after each `report` (as with Optuna).
public struct SuccessiveHalvingPruner: Pruner {
    /// Steps before the first rung; nil estimates it as in Optuna: the longest completed
    /// trial's last step / 100 (at least 1), and no pruning before a trial completes.
    public var minResource: Int?
    public var reductionFactor: Int
    public var minEarlyStoppingRate: Int
    /// Trials of the same bracket (Hyperband) only; nil compares with every trial.
    var bracket: (id: Int, of: @Sendable (FrozenTrial) -> Int)?

    public init(minResource: Int? = nil, reductionFactor: Int = 4, minEarlyStoppingRate: Int = 0) {
        self.minResource = minResource
        self.reductionFactor = reductionFactor
        self.minEarlyStoppingRate = minEarlyStoppingRate
        self.bracket = nil
    }

    public func shouldPrune(trial: FrozenTrial, studyTrials: [FrozenTrial], direction: StudyDirection) -> Bool {
        guard let (step, value) = trial.lastIntermediate else { return false }
        let resource: Int
        if let minResource { resource = minResource } else {
            let lastSteps = studyTrials.filter { $0.state == .complete }.compactMap { $0.lastIntermediate?.step }
            guard let longest = lastSteps.max() else { return false }
            resource = max(longest / 100, 1)
        }
        let previousStep = trial.intermediateValues.keys.filter { $0 < step }.max() ?? Int.min
        let peers = studyTrials.filter { peer in
            guard peer.id != trial.id else { return false }
            guard let bracket else { return true }
            return bracket.of(peer) == bracket.id
        }
        var rung = 0
        while true {
            let (power, overflow) = powInt(reductionFactor, minEarlyStoppingRate + rung)
            if overflow { return false }
            let promotionStep = resource * power
            if step < promotionStep { return false }
            if promotionStep > previousStep {
                if value.isNaN { return true }
                var competing = peers.compactMap { peer -> Double? in
                    guard let first = peer.intermediateValues.keys.filter({ $0 >= promotionStep }).min() else { return nil }
                    return peer.intermediateValues[first]
                }
                competing.append(value)
                var promotable = competing.count / reductionFactor - 1
                if promotable < 0 { promotable = 0 }
                let sorted = direction == .minimize ? competing.sorted() : competing.sorted(by: >)
                let cutoff = sorted[promotable]
                let promoted = direction == .minimize ? value <= cutoff : value >= cutoff
                if !promoted { return true }
            }
            rung += 1
        }
    }
}

private func powInt(_ base: Int, _ exponent: Int) -> (Int, Bool) {
    var result = 1
    for _ in 0..<max(0, exponent) {
        let (product, overflow) = result.multipliedReportingOverflow(by: base)
        if overflow { return (0, true) }
        result = product
    }
    return (result, false)
}

/// Hyperband (Li et al. 2018, Optuna semantics): several successive-halving brackets with
/// increasing minimum early-stopping rates; each trial is assigned to a bracket by a hash
/// of its number, in proportion to the bracket's Hyperband budget, and competes only with
/// trials of its bracket.
public struct HyperbandPruner: Pruner {
    public var minResource: Int
    /// The steps a full trial runs; pruning waits for a completed trial to set it when nil.
    public var maxResource: Int?
    public var reductionFactor: Int

    public init(minResource: Int = 1, maxResource: Int? = nil, reductionFactor: Int = 3) {
        self.minResource = minResource
        self.maxResource = maxResource
        self.reductionFactor = reductionFactor
    }

    /// floor(log_eta(max / min)) + 1 brackets.
    func bracketCount(maxResource: Int) -> Int {
        var count = 1, resource = minResource
        while resource * reductionFactor <= maxResource {
            resource *= reductionFactor
            count += 1
        }
        return count
    }

    /// Hyperband's trial budget of each bracket: ceil(n * eta^s / (s + 1)), s = n - 1 - i.
    func bracketBudgets(count: Int) -> [Int] {
        (0..<count).map { i in
            let s = count - 1 - i
            let numerator = Double(count) * pow(Double(reductionFactor), Double(s))
            return Int((numerator / Double(s + 1)).rounded(.up))
        }
    }

    func bracketOf(trialNumber: Int, budgets: [Int]) -> Int {
        let total = budgets.reduce(0, +)
        var slot = Int(stableHash("hyperband-\(trialNumber)") % UInt64(total))
        for (i, budget) in budgets.enumerated() {
            if slot < budget { return i }
            slot -= budget
        }
        return budgets.count - 1
    }

    public func shouldPrune(trial: FrozenTrial, studyTrials: [FrozenTrial], direction: StudyDirection) -> Bool {
        let resolvedMax = maxResource ?? studyTrials.filter { $0.state == .complete }.compactMap { $0.lastIntermediate?.step }.max()
        guard let resolvedMax else { return false }
        let budgets = bracketBudgets(count: bracketCount(maxResource: resolvedMax))
        let id = bracketOf(trialNumber: trial.number, budgets: budgets)
        var halving = SuccessiveHalvingPruner(minResource: minResource, reductionFactor: reductionFactor, minEarlyStoppingRate: id)
        halving.bracket = (id, { [self] peer in bracketOf(trialNumber: peer.number, budgets: budgets) })
        return halving.shouldPrune(trial: trial, studyTrials: studyTrials, direction: direction)
    }
}
