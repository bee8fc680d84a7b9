import Foundation
import Logging

/// Picks a sampling strategy from the space's cardinality, the trial budget, the number of
/// objectives and how many trials are done, and says why.
///
/// - A finite space the budget covers: grid search (every point once).
/// - The first `startupTrials` trials: Sobol points (random above 21 parameters), which
///   cover the space evenly for the models that follow.
/// - Then, for small spaces and budgets (at most 10 parameters, 200 trials, no conditions):
///   GP-based optimisation, log-EI for one objective and EHVI for several. The GP is the most
///   sample-efficient there (in Benchmarks/search at 50-200 trials it leads multi-objective
///   TPE by far on every continuous problem, and on NAS-Bench-201's six categorical
///   parameters it wins or ties but for 0.003 of hypervolume on one device) but its cost
///   grows as trials^3.
/// - Otherwise, one objective: multivariate TPE; several: NSGA-II for large budgets (its
///   generations need many trials), MOTPE below that.
public struct AutoSampler: Sampler {
    /// The planned number of trials; nil when unknown (no grid then).
    public var budget: Int?
    public var startupTrials: Int
    private let logger: Logger

    public init(budget: Int?, startupTrials: Int = 10, logger: Logger = Logger(label: "edgenas.search.auto")) {
        self.budget = budget
        self.startupTrials = startupTrials
        self.logger = logger
    }

    public var name: String { "auto" }

    /// A choice and the reason for it, in words.
    public struct Decision: Sendable {
        public var sampler: any Sampler
        public var reason: String
    }

    public func decide(space: SearchSpace, objectives: Int, finishedTrials: Int) -> Decision {
        let dimensions = space.parameters.count
        if case .finite(let points) = space.cardinality, let budget, budget >= points {
            return Decision(sampler: GridSampler(), reason: "the budget of \(budget) trials covers all \(points) points of the space: grid search")
        }
        let size = space.cardinality == .infinite ? "an infinite space" : "a space of \(space.cardinality) points"
        if finishedTrials < startupTrials {
            if dimensions <= SobolSampler.maxDimensions {
                return Decision(sampler: SobolSampler(), reason: "\(size): Sobol points for the first \(startupTrials) trials, to cover it evenly before modelling")
            }
            return Decision(sampler: RandomSampler(), reason: "\(size) with \(dimensions) parameters: random points for the first \(startupTrials) trials")
        }
        let categorical = space.parameters.filter { if case .categorical = $0.distribution { true } else { false } }.count
        let numeric = categorical == 0
        if dimensions <= 10 && (budget ?? .max) <= 200 && !space.isConditional {
            let criterion = objectives == 1 ? "log expected improvement" : "expected hypervolume improvement"
            let kinds = numeric ? "numeric parameters" : "parameters (\(categorical) categorical)"
            return Decision(sampler: GPSampler(startupTrials: startupTrials),
                            reason: "\(objectives) objective(s), \(dimensions) \(kinds) and at most \(budget ?? 0) trials: "
                                + "Gaussian-process optimisation with \(criterion) (most sample-efficient at this size)")
        }
        if objectives == 1 {
            return Decision(sampler: TPESampler(multivariate: true, startupTrials: startupTrials),
                            reason: "one objective in \(size) (\(dimensions) parameters\(numeric ? "" : ", some categorical")): multivariate TPE")
        }
        if let budget, budget >= 1000 {
            return Decision(sampler: NSGAIISampler(), reason: "\(objectives) objectives and \(budget) trials, enough for NSGA-II generations of 50")
        }
        return Decision(sampler: TPESampler(multivariate: true, startupTrials: startupTrials),
                        reason: "\(objectives) objectives and \(budget.map(String.init) ?? "an open") budget: multi-objective TPE (MOTPE)")
    }

    public func sample(space: SearchSpace, context: SamplingContext) throws -> [String: ParameterValue] {
        let finished = context.trials.filter { $0.state == .complete || $0.state == .pruned }.count
        let decision = decide(space: space, objectives: context.directions.count, finishedTrials: finished)
        // Log when the strategy changes, not on every trial.
        if finished == 0 || decide(space: space, objectives: context.directions.count, finishedTrials: finished - 1).sampler.name != decision.sampler.name {
            logger.info("trial \(context.trialNumber): \(decision.sampler.name), because \(decision.reason)")
        }
        return try decision.sampler.sample(space: space, context: context)
    }
}
