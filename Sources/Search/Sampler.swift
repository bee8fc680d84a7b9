import Foundation
import Randomness

/// What a sampler sees when it proposes parameters for one trial.
///
/// Everything a sampler may depend on is in here (no hidden state), so that any worker on
/// any machine, given the same study history, proposes the same parameters.
public struct SamplingContext: Sendable {
    /// The number of the trial being sampled.
    public var trialNumber: Int
    /// The study seed.
    public var seed: UInt64
    public var directions: [StudyDirection]
    /// Every other trial of the study, in number order, in any state (running trials are
    /// there for constant-liar strategies and for grid bookkeeping).
    public var trials: [FrozenTrial]
    /// Values fixed in advance for this trial (an enqueued, possibly partial assignment).
    public var fixed: [String: ParameterValue]

    public init(trialNumber: Int, seed: UInt64, directions: [StudyDirection], trials: [FrozenTrial], fixed: [String: ParameterValue] = [:]) {
        self.trialNumber = trialNumber
        self.seed = seed
        self.directions = directions
        self.trials = trials
        self.fixed = fixed
    }

    /// A generator for this trial and a purpose (so that two uses never share a stream).
    public func rng(_ purpose: String) -> SplitMix64 {
        SplitMix64(seed: seed, UInt64(trialNumber), stableHash(purpose))
    }

    /// Completed trials with one value per objective.
    public var completed: [FrozenTrial] {
        trials.filter { $0.state == .complete && $0.values?.count == directions.count }
    }

    public var running: [FrozenTrial] { trials.filter { $0.state == .running } }
}

public enum SamplerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Every point of a finite space has been tried (grid search is done).
    case searchSpaceExhausted(points: Int)
    /// The sampler cannot handle this space (a grid over an infinite space).
    case unsupportedSpace(sampler: String, reason: String)

    public var description: String {
        switch self {
        case .searchSpaceExhausted(let points): "all \(points) points of the search space have been tried"
        case .unsupportedSpace(let sampler, let reason): "\(sampler) cannot sample this space: \(reason)"
        }
    }
}

/// Proposes the parameters of one trial.
///
/// Implementations must be pure functions of (space, context): deterministic from the
/// seed, the trial number and the history, keeping no mutable state between calls.
public protocol Sampler: Sendable {
    /// A short name for logs and reports ("tpe", "grid").
    var name: String { get }
    /// Values for the active parameters of the space (values in `context.fixed` are kept
    /// by the study whatever the sampler returns for them).
    func sample(space: SearchSpace, context: SamplingContext) throws -> [String: ParameterValue]
}

/// Independent uniform sampling: the baseline every other sampler must beat.
public struct RandomSampler: Sampler {
    public var name: String { "random" }

    public init() {}

    public func sample(space: SearchSpace, context: SamplingContext) -> [String: ParameterValue] {
        var rng = context.rng("random")
        return space.sampleUniform(using: &rng)
    }
}

/// Tries every point of a finite space once, in a seeded random order.
///
/// Workers sharing a study never take the same point: a trial skips every point already
/// held by another trial (waiting, running or finished, failed ones excepted so they are
/// retried), and a trial whose lower-numbered peers are still sampling (running without
/// parameters yet) leaves them the first free points, in number order. Two racing workers
/// therefore agree on who takes which point whatever each of them sees.
public struct GridSampler: Sampler {
    public var name: String { "grid" }

    public init() {}

    public func sample(space: SearchSpace, context: SamplingContext) throws -> [String: ParameterValue] {
        guard case .finite(let total) = space.cardinality else {
            throw SamplerError.unsupportedSpace(sampler: name, reason: "the space is infinite (a float without step)")
        }
        guard total <= 50_000_000 else {
            throw SamplerError.unsupportedSpace(sampler: name, reason: "the space has \(total) points, too many to enumerate")
        }
        var taken = Set<[String: ParameterValue]>()
        var pendingBefore = 0
        for trial in context.trials where trial.state != .failed {
            if trial.parameters.isEmpty {
                if trial.state == .running && trial.number < context.trialNumber { pendingBefore += 1 }
            } else {
                taken.insert(space.activeAssignment(trial.parameters))
            }
        }
        // A seeded permutation of the indices, the same for every trial of the study: an
        // affine map i -> (a*i + b) mod n with a coprime to n visits each index once.
        var rng = SplitMix64(seed: context.seed, stableHash("grid-order"))
        let n = UInt64(total)
        var a = n > 1 ? 1 + rng.next() % (n - 1) : 1
        while gcd(a, n) != 1 { a = a % (n - 1) + 1 }
        let b = n > 0 ? rng.next() % n : 0
        var skip = pendingBefore
        for i in 0..<n {
            let (high, low) = a.multipliedFullWidth(by: i)
            let product = n.dividingFullWidth((high % n, low)).remainder
            let position = Int((product + b) % n)
            let point = space.gridPoint(at: position)!
            if taken.contains(point) { continue }
            if skip > 0 { skip -= 1; continue }
            return point
        }
        throw SamplerError.searchSpaceExhausted(points: total)
    }
}

private func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
    var (x, y) = (a, b)
    while y != 0 { (x, y) = (y, x % y) }
    return x
}
