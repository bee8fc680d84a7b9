// Pruning in the detector search: a trial's AP@0.5 after each training epoch, judged by one of
// the Search module's pruners against the trials that could keep it off the Pareto front.
import Search

/// The config's `pruner:` key: which pruner stops trials early, and its settings.
public struct PrunerSetting: Hashable, Sendable {
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        case none, median
        case successiveHalving = "successive_halving"
        case hyperband
    }

    public var kind: Kind
    /// median: no pruning until this many rival trials (see `EpochPruning`) are complete.
    public var startupTrials: Int
    /// median: epochs trained before a trial can be pruned; successive halving and Hyperband:
    /// the epochs of the first rung.
    public var minEpochs: Int
    /// successive halving and Hyperband: 1 in `reductionFactor` trials goes on at each rung.
    public var reductionFactor: Int

    public init(kind: Kind, startupTrials: Int = 5, minEpochs: Int = 1, reductionFactor: Int = 3) {
        self.kind = kind
        self.startupTrials = startupTrials
        self.minEpochs = minEpochs
        self.reductionFactor = reductionFactor
    }

    public static let none = PrunerSetting(kind: .none)

    /// The pruner (nil for `none`).
    public var pruner: (any Pruner)? {
        switch kind {
        case .none: nil
        case .median: PercentilePruner.median(startupTrials: startupTrials, warmupSteps: minEpochs)
        case .successiveHalving: SuccessiveHalvingPruner(minResource: minEpochs, reductionFactor: reductionFactor)
        case .hyperband: HyperbandPruner(minResource: minEpochs, reductionFactor: reductionFactor)
        }
    }

    public var description: String {
        switch kind {
        case .none: "none"
        case .median: "median (after \(minEpochs) epoch(s), once \(startupTrials) rival trials are complete)"
        case .successiveHalving, .hyperband:
            "\(kind.rawValue) (first rung at \(minEpochs) epoch(s), 1 in \(reductionFactor) goes on)"
        }
    }
}

/// Decides, after each epoch of a trial's training, whether to stop it.
///
/// The rule keeps the latency front: a trial is judged only against its *rivals*, the complete
/// and pruned trials that are at least as good in every objective other than AP@0.5 (latency,
/// and parameters or memory when searched). Those objectives are measured before the training
/// starts, so the rivals are known then; only a rival can dominate the trial, so only a better
/// rival AP is a reason to stop it. A trial faster than every trial so far has no rivals and
/// always trains to the end, which keeps the fast end of the front: a plain median over all
/// trials would prune exactly the small, fast networks that learn slower and that the search
/// is for.
struct EpochPruning: Sendable {
    var pruner: any Pruner
    var objectives: [SearchObjective]
    /// The study's trials when the judged trial started (their per-epoch AP@0.5 included).
    var trials: [FrozenTrial]

    /// The trials that could dominate a trial with these measured objectives.
    func rivals(ofTrial id: Int, metrics: [SearchObjective: Double]) -> [FrozenTrial] {
        trials.filter { other in
            guard other.id != id, other.state == .complete || other.state == .pruned, let record = TrialRecord(other) else { return false }
            return objectives.dropFirst().allSatisfy { objective in
                guard let own = metrics[objective], let theirs = record.metric(objective) else { return false }
                return theirs <= own
            }
        }
    }

    /// Whether the trial, with AP@0.5 `intermediateValues` by epochs trained, should stop now.
    func shouldStop(trialID id: Int, number: Int, intermediateValues: [Int: Double], metrics: [SearchObjective: Double]) -> Bool {
        let trial = FrozenTrial(id: id, number: number, state: .running, intermediateValues: intermediateValues)
        return pruner.shouldPrune(trial: trial, studyTrials: rivals(ofTrial: id, metrics: metrics), direction: .maximize)
    }
}
