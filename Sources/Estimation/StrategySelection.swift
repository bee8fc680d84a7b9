// Choosing a performance-estimation strategy: rank candidate strategies by how well they order a
// set of fully trained reference architectures, then plan what a search with each would cost.
import Foundation

/// One strategy's scores for the K reference architectures and what one evaluation costs.
public struct StrategyScores: Codable, Sendable, Hashable {
    public var name: String
    /// Higher = predicted better, aligned with the true scores.
    public var scores: [Double]
    /// Seconds to score one architecture with this strategy.
    public var secondsPerArchitecture: Double

    public init(name: String, scores: [Double], secondsPerArchitecture: Double) {
        self.name = name
        self.scores = scores
        self.secondsPerArchitecture = secondsPerArchitecture
    }
}

/// One row of the rank table.
public struct StrategyRanking: Codable, Sendable, Hashable {
    public var name: String
    public var kendallTau: Double
    public var spearmanRho: Double
    /// Percentile bootstrap interval of Kendall tau.
    public var kendallTauInterval: BootstrapInterval
    public var secondsPerArchitecture: Double
    /// Pairs used (architectures whose strategy score is finite).
    public var architectures: Int
}

public enum StrategySelectionError: Error, Equatable, Sendable, CustomStringConvertible {
    case noStrategies
    case scoreCountMismatch(strategy: String, scores: Int, architectures: Int)
    case invalidCost(strategy: String, seconds: Double)
    case tooFewFiniteScores(strategy: String, count: Int)

    public var description: String {
        switch self {
        case .noStrategies: "no strategies to rank; expected at least one"
        case .scoreCountMismatch(let s, let n, let k): "strategy \(s) has \(n) scores; expected one per reference architecture (\(k))"
        case .invalidCost(let s, let v): "strategy \(s) costs \(v) s per architecture; expected a finite value >= 0"
        case .tooFewFiniteScores(let s, let n): "strategy \(s) has \(n) finite scores; expected at least 2"
        }
    }
}

/// The rank table: strategies sorted by Kendall tau, best first.
public struct StrategyRankTable: Codable, Sendable, Hashable {
    public var rows: [StrategyRanking]

    /// Ranks every strategy against `trueScores`. Non-finite strategy scores (failed evaluations)
    /// are dropped pairwise. Strategies whose tau is undefined (constant scores) sort last.
    public init(trueScores: [Double], strategies: [StrategyScores], resamples: Int = 1000,
                confidenceLevel: Double = 0.95, seed: UInt64 = 0) throws {
        guard !strategies.isEmpty else { throw StrategySelectionError.noStrategies }
        var rows: [StrategyRanking] = []
        for s in strategies {
            guard s.scores.count == trueScores.count else {
                throw StrategySelectionError.scoreCountMismatch(strategy: s.name, scores: s.scores.count, architectures: trueScores.count)
            }
            guard s.secondsPerArchitecture.isFinite && s.secondsPerArchitecture >= 0 else {
                throw StrategySelectionError.invalidCost(strategy: s.name, seconds: s.secondsPerArchitecture)
            }
            let kept = RankStatistics.dropMissing(s.scores, trueScores)
            guard kept.x.count >= 2 else { throw StrategySelectionError.tooFewFiniteScores(strategy: s.name, count: kept.x.count) }
            let interval = try RankStatistics.bootstrap(.kendallTau, kept.x, kept.y, resamples: resamples,
                                                        confidenceLevel: confidenceLevel, seed: seed)
            rows.append(StrategyRanking(
                name: s.name, kendallTau: interval.estimate, spearmanRho: try RankStatistics.spearmanRho(kept.x, kept.y),
                kendallTauInterval: interval, secondsPerArchitecture: s.secondsPerArchitecture, architectures: kept.x.count))
        }
        // Best tau first; ties go to the cheaper strategy; undefined tau last. Taus are compared
        // rounded to 12 decimals, so that two perfect orderings (1 up to the last bit of the
        // square roots in tau-b) count as tied.
        func key(_ tau: Double) -> Double { tau.isNaN ? -Double.infinity : (tau * 1e12).rounded() }
        self.rows = rows.sorted { a, b in
            let ta = key(a.kendallTau), tb = key(b.kendallTau)
            return ta != tb ? ta > tb : a.secondsPerArchitecture < b.secondsPerArchitecture
        }
    }

    /// The highest-tau strategy whose per-architecture cost fits the budget, or nil if none does.
    public func bestAffordable(maxSecondsPerArchitecture budget: Double) -> StrategyRanking? {
        rows.first { $0.secondsPerArchitecture <= budget && !$0.kendallTau.isNaN }
    }

    public var csv: String {
        var out = "strategy,kendall_tau,tau_ci_lower,tau_ci_upper,confidence,spearman_rho,seconds_per_architecture,architectures\n"
        for r in rows {
            out += "\(csvField(r.name)),\(r.kendallTau),\(r.kendallTauInterval.lower),\(r.kendallTauInterval.upper),"
            out += "\(r.kendallTauInterval.confidenceLevel),\(r.spearmanRho),\(r.secondsPerArchitecture),\(r.architectures)\n"
        }
        return out
    }

    public func json() throws -> Data { try sortedJSONEncoder().encode(self) }
}

/// Quotes a CSV field when it contains a separator, quote or line break (RFC 4180).
func csvField(_ s: String) -> String {
    s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

func sortedJSONEncoder() -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return encoder
}

// MARK: - Budget planner

/// What one search trial costs with a strategy.
public struct StrategyCost: Codable, Sendable, Hashable {
    public var name: String
    public var secondsPerTrial: Double
    /// Whether the Pareto front found must be retrained fully afterwards (false for full training,
    /// whose trials are already final).
    public var retrainsFront: Bool

    public init(name: String, secondsPerTrial: Double, retrainsFront: Bool = true) {
        self.name = name
        self.secondsPerTrial = secondsPerTrial
        self.retrainsFront = retrainsFront
    }
}

/// Projected time of a search with one strategy (see docs/estimators.md for the formulas).
public struct BudgetPlanRow: Codable, Sendable, Hashable {
    public var strategy: String
    /// N x strategy seconds per trial.
    public var searchSeconds: Double
    /// Full-training search time / searchSeconds.
    public var searchSpeedup: Double
    /// front size x full training seconds, or 0 when the strategy already trains fully.
    public var retrainingSeconds: Double
    /// search + retraining + selection cost.
    public var totalSeconds: Double
    /// Full-training search time / totalSeconds.
    public var overallSpeedup: Double
}

public enum BudgetPlanError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidValue(field: String, value: Double, expected: String)

    public var description: String {
        switch self {
        case .invalidValue(let f, let v, let e): "budget plan \(f) = \(v); expected \(e)"
        }
    }
}

/// Projects N trials for each strategy from the time of one full training.
public struct BudgetPlan: Codable, Sendable, Hashable {
    public var fullTrainingSeconds: Double
    public var trials: Int
    public var frontSize: Int
    /// Time spent choosing the strategy (training the K reference architectures fully and scoring
    /// them with every candidate strategy); charged to every strategy's total.
    public var selectionSeconds: Double
    /// Search with full training for every trial: N x full training seconds.
    public var baselineSeconds: Double
    public var rows: [BudgetPlanRow]

    public init(fullTrainingSeconds: Double, trials: Int, frontSize: Int, selectionSeconds: Double, strategies: [StrategyCost]) throws {
        guard fullTrainingSeconds > 0 && fullTrainingSeconds.isFinite else {
            throw BudgetPlanError.invalidValue(field: "fullTrainingSeconds", value: fullTrainingSeconds, expected: "> 0")
        }
        guard trials >= 1 else { throw BudgetPlanError.invalidValue(field: "trials", value: Double(trials), expected: ">= 1") }
        guard frontSize >= 0 && frontSize <= trials else {
            throw BudgetPlanError.invalidValue(field: "frontSize", value: Double(frontSize), expected: "in 0...\(trials)")
        }
        guard selectionSeconds >= 0 && selectionSeconds.isFinite else {
            throw BudgetPlanError.invalidValue(field: "selectionSeconds", value: selectionSeconds, expected: ">= 0")
        }
        self.fullTrainingSeconds = fullTrainingSeconds
        self.trials = trials
        self.frontSize = frontSize
        self.selectionSeconds = selectionSeconds
        let baseline = Double(trials) * fullTrainingSeconds
        baselineSeconds = baseline
        rows = try strategies.map { s in
            guard s.secondsPerTrial > 0 && s.secondsPerTrial.isFinite else {
                throw BudgetPlanError.invalidValue(field: "\(s.name).secondsPerTrial", value: s.secondsPerTrial, expected: "> 0")
            }
            let search = Double(trials) * s.secondsPerTrial
            let retraining = s.retrainsFront ? Double(frontSize) * fullTrainingSeconds : 0
            let total = search + retraining + selectionSeconds
            return BudgetPlanRow(strategy: s.name, searchSeconds: search, searchSpeedup: baseline / search,
                                 retrainingSeconds: retraining, totalSeconds: total, overallSpeedup: baseline / total)
        }
    }

    public var csv: String {
        var out = "strategy,trials,search_seconds,search_speedup,retraining_seconds,selection_seconds,total_seconds,overall_speedup\n"
        for r in rows {
            out += "\(csvField(r.strategy)),\(trials),\(r.searchSeconds),\(r.searchSpeedup),\(r.retrainingSeconds),"
            out += "\(selectionSeconds),\(r.totalSeconds),\(r.overallSpeedup)\n"
        }
        return out
    }

    public func json() throws -> Data { try sortedJSONEncoder().encode(self) }
}
