import Foundation
import Randomness

/// Tree-structured Parzen Estimator (Bergstra et al. 2011), following Optuna's defaults:
/// after `startupTrials` random trials, the trials are split into the best
/// gamma(n) = min(ceil(0.1 n), 25) ("below") and the rest ("above"); a Parzen mixture is
/// fitted to each, `eiCandidates` points are drawn from the "below" mixture l(x) and the
/// one maximising l(x) / g(x) is proposed.
///
/// - `multivariate`: one joint mixture over the parameters every trial has (kernels keep
///   the parameters of one observation together), instead of one mixture per parameter.
/// - Several objectives (MOTPE): "below" is filled by non-domination rank, the last rank
///   cut by greedy hypervolume contribution, and its kernels are weighted by each point's
///   hypervolume contribution.
/// - Constraints: feasible trials rank before infeasible ones (by total violation).
/// - `constantLiar`: running trials count as the worst ones, so parallel workers spread.
public struct TPESampler: Sampler {
    public var multivariate: Bool
    public var startupTrials: Int
    public var eiCandidates: Int
    public var priorWeight: Double
    public var constantLiar: Bool

    public init(multivariate: Bool = false, startupTrials: Int = 10, eiCandidates: Int = 24, priorWeight: Double = 1.0, constantLiar: Bool = false) {
        self.multivariate = multivariate
        self.startupTrials = startupTrials
        self.eiCandidates = eiCandidates
        self.priorWeight = priorWeight
        self.constantLiar = constantLiar
    }

    public var name: String { multivariate ? "tpe-multivariate" : "tpe" }

    /// Optuna's default gamma.
    static func gamma(_ n: Int) -> Int { min(Int((0.1 * Double(n)).rounded(.up)), 25) }

    /// Optuna's default observation weights: the 25 newest weigh 1, older ones ramp down.
    static func defaultWeights(_ n: Int) -> [Double] {
        guard n >= 25 else { return [Double](repeating: 1, count: n) }
        let rampCount = n - 25
        var weights: [Double] = (0..<rampCount).map { i in
            rampCount == 1 ? 1.0 / Double(n) : 1.0 / Double(n) + (1 - 1.0 / Double(n)) * Double(i) / Double(rampCount - 1)
        }
        weights += [Double](repeating: 1, count: 25)
        return weights
    }

    public func sample(space: SearchSpace, context: SamplingContext) -> [String: ParameterValue] {
        var rng = context.rng("tpe")
        let finished = context.trials.filter { ($0.state == .complete && $0.values?.count == context.directions.count) || $0.state == .pruned }
        guard finished.count >= startupTrials else { return space.sampleUniform(using: &rng) }
        let (below, above, belowWeights) = split(context)
        guard !below.isEmpty else { return space.sampleUniform(using: &rng) }

        var result: [String: ParameterValue] = [:]
        if multivariate {
            // Joint model over the parameters present in every split trial (the rest, such
            // as conditional parameters, fall back to the independent model below).
            let joint = space.parameters.filter { p in (below + above).allSatisfy { $0.parameters[p.name] != nil } }
            if !joint.isEmpty {
                let l = ParzenEstimator(parameters: joint, observations: below, weights: belowWeights, priorWeight: priorWeight)
                let g = ParzenEstimator(parameters: joint, observations: above, weights: Self.defaultWeights(above.count), priorWeight: priorWeight)
                let chosen = bestCandidate(l: l, g: g, rng: &rng)
                for (k, parameter) in joint.enumerated() { result[parameter.name] = chosen[k] }
            }
        }
        for parameter in space.parameters where space.isActive(parameter, in: result) && result[parameter.name] == nil {
            // Only conditional parameters can be missing from a trial; copying the trial
            // lists for the others would dominate the sampler's cost on long studies.
            let l: ParzenEstimator, g: ParzenEstimator
            if parameter.condition == nil {
                l = ParzenEstimator(parameters: [parameter], observations: below, weights: belowWeights, priorWeight: priorWeight)
                g = ParzenEstimator(parameters: [parameter], observations: above, weights: Self.defaultWeights(above.count), priorWeight: priorWeight)
            } else {
                let b = below.enumerated().filter { $0.element.parameters[parameter.name] != nil }
                let a = above.filter { $0.parameters[parameter.name] != nil }
                l = ParzenEstimator(parameters: [parameter], observations: b.map(\.element), weights: b.map { belowWeights[$0.offset] }, priorWeight: priorWeight)
                g = ParzenEstimator(parameters: [parameter], observations: a, weights: Self.defaultWeights(a.count), priorWeight: priorWeight)
            }
            result[parameter.name] = bestCandidate(l: l, g: g, rng: &rng)[0]
        }
        return space.activeAssignment(result)
    }

    private func bestCandidate(l: ParzenEstimator, g: ParzenEstimator, rng: inout SplitMix64) -> [ParameterValue] {
        var best: [Double] = []
        var bestScore = -Double.infinity
        for _ in 0..<max(1, eiCandidates) {
            let x = l.sample(using: &rng)
            let score = l.logDensity(x) - g.logDensity(x)
            if score > bestScore || best.isEmpty {
                best = x
                bestScore = score
            }
        }
        return l.values(x: best)
    }

    /// Splits the history into "below" (good) and "above" trials, both in trial-number
    /// order, with the kernel weights of the "below" trials.
    func split(_ context: SamplingContext) -> (below: [FrozenTrial], above: [FrozenTrial], belowWeights: [Double]) {
        let directions = context.directions
        let complete = context.completed
        let feasible = complete.filter(\.isFeasible)
        let infeasible = complete.filter { !$0.isFeasible }.sorted { violation($0) < violation($1) }
        // Pruned trials: those that got further are better, then by their last value.
        let sign = directions[0] == .minimize ? 1.0 : -1.0
        let pruned = context.trials.filter { $0.state == .pruned }.sorted { a, b in
            let sa = a.intermediateValues.keys.max() ?? -1, sb = b.intermediateValues.keys.max() ?? -1
            if sa != sb { return sa > sb }
            let va = sa >= 0 ? sign * a.intermediateValues[sa]! : .infinity
            let vb = sb >= 0 ? sign * b.intermediateValues[sb]! : .infinity
            return va < vb
        }
        let running = constantLiar ? context.running.filter { !$0.parameters.isEmpty } : []
        let total = complete.count + pruned.count + running.count
        var nBelow = Self.gamma(total)

        var below: [FrozenTrial] = []
        var rest: [FrozenTrial] = []
        var belowWeights: [Double]? = nil
        if directions.count == 1 {
            let ordered = feasible.sorted { sign * $0.values![0] < sign * $1.values![0] }
            below = Array(ordered.prefix(nBelow))
            rest = Array(ordered.dropFirst(nBelow))
        } else {
            let chosen = Self.selectMultiObjective(feasible.map { lossVector($0.values!, directions) }, count: min(nBelow, feasible.count))
            let chosenSet = Set(chosen)
            below = chosen.map { feasible[$0] }
            rest = feasible.indices.filter { !chosenSet.contains($0) }.map { feasible[$0] }
            belowWeights = Self.hypervolumeContributionWeights(below.map { lossVector($0.values!, directions) })
        }
        nBelow -= below.count
        for group in [pruned, infeasible] {
            let take = min(nBelow, group.count)
            below += group.prefix(take)
            rest += group.dropFirst(take)
            nBelow -= take
            if belowWeights != nil { belowWeights! += [Double](repeating: belowWeights!.min() ?? 1, count: take) }
        }
        rest += running
        // Kernels are weighted by age (trial number), so sort both groups by number.
        let order = below.indices.sorted { below[$0].number < below[$1].number }
        let weights = belowWeights.map { w in order.map { w[$0] } } ?? Self.defaultWeights(below.count)
        return (order.map { below[$0] }, rest.sorted { $0.number < $1.number }, weights)
    }

    private func violation(_ trial: FrozenTrial) -> Double {
        (trial.constraints ?? []).reduce(0) { $0 + max(0, $1) }
    }

    /// Picks `count` points: whole non-domination ranks first, then the last rank cut by
    /// greedy hypervolume contribution (Optuna's HSSP approximation).
    static func selectMultiObjective(_ losses: [[Double]], count: Int) -> [Int] {
        guard count > 0 else { return [] }
        var chosen: [Int] = []
        for front in Pareto.leadingFronts(losses, minimumCount: count) where chosen.count < count {
            if chosen.count + front.count <= count {
                chosen += front
            } else {
                chosen += greedyHypervolumeSubset(front.map { losses[$0] }, count: count - chosen.count).map { front[$0] }
            }
        }
        return chosen
    }

    /// Greedily adds the point that increases the hypervolume most.
    static func greedyHypervolumeSubset(_ points: [[Double]], count: Int) -> [Int] {
        let reference = referencePoint(points)
        var chosen: [Int] = []
        var candidates = Array(points.indices)
        var current = 0.0
        while chosen.count < count, !candidates.isEmpty {
            var bestGain = -Double.infinity, bestPosition = 0
            for (position, i) in candidates.enumerated() {
                let gain = Pareto.hypervolume(chosen.map { points[$0] } + [points[i]], reference: reference) - current
                if gain > bestGain { bestGain = gain; bestPosition = position }
            }
            let i = candidates.remove(at: bestPosition)
            chosen.append(i)
            current += bestGain
        }
        return chosen
    }

    /// A reference point just beyond the worst value of each objective.
    static func referencePoint(_ points: [[Double]]) -> [Double] {
        points[0].indices.map { m in
            let worst = points.map { $0[m] }.max()!
            return worst + max(abs(worst) * 0.1, 1e-12)
        }
    }

    /// MOTPE weights: each point's exclusive hypervolume contribution, relative to the
    /// largest, floored so that no kernel vanishes.
    static func hypervolumeContributionWeights(_ points: [[Double]]) -> [Double] {
        guard points.count > 1 else { return [Double](repeating: 1, count: points.count) }
        let reference = referencePoint(points)
        let total = Pareto.hypervolume(points, reference: reference)
        let contributions = points.indices.map { i in
            total - Pareto.hypervolume(points.indices.filter { $0 != i }.map { points[$0] }, reference: reference)
        }
        let top = contributions.max() ?? 0
        guard top > 0 else { return [Double](repeating: 1, count: points.count) }
        return contributions.map { max($0 / top, 1e-12) }
    }
}

/// A Parzen mixture over one or several parameters: one kernel per observation plus a
/// broad prior kernel. Numbers are modelled in their internal space (log for log-scaled
/// parameters) with truncated Gaussians (discretised for stepped ones); categoricals with
/// a smoothed indicator of the observed choice.
struct ParzenEstimator {
    enum Component {
        /// Kernel centres and widths in the internal space [low, high]; `step` set when
        /// values lie on a grid (mass of the cell around the value, not a density).
        /// `logNormalisers[k]` = log of kernel k's mass inside [low, high] (plus log sigma for
        /// continuous ones), computed once since every candidate needs it.
        case numeric(mus: [Double], sigmas: [Double], logNormalisers: [Double], low: Double, high: Double, step: Double?, distribution: Distribution)
        /// logProbabilities[kernel][choice].
        case categorical(logProbabilities: [[Double]], choices: [ParameterValue])
    }

    let logWeights: [Double]
    let components: [Component]

    init(parameters: [SearchParameter], observations: [FrozenTrial], weights: [Double], priorWeight: Double) {
        let n = observations.count
        var w = weights + [priorWeight]
        let sum = w.reduce(0, +)
        w = w.map { $0 / sum }
        logWeights = w.map { Foundation.log(max($0, 1e-300)) }
        let kernelCount = n + 1
        components = parameters.map { parameter in
            switch parameter.distribution {
            case .categorical(let choices):
                let k = choices.count
                var rows: [[Double]] = observations.map { trial in
                    var row = [Double](repeating: priorWeight / Double(kernelCount), count: k)
                    if let value = trial.parameters[parameter.name], let index = choices.firstIndex(of: value) { row[index] += 1 }
                    let total = row.reduce(0, +)
                    return row.map { Foundation.log($0 / total) }
                }
                rows.append([Double](repeating: -Foundation.log(Double(k)), count: k))
                return .categorical(logProbabilities: rows, choices: choices)
            default:
                let (low, high, step) = ParzenEstimator.internalBounds(parameter.distribution)
                let mus = observations.map { ParzenEstimator.toInternal(parameter.distribution, $0.parameters[parameter.name]!) }
                var sigmas = ParzenEstimator.neighbourSigmas(mus, low: low, high: high)
                if parameters.count > 1 {
                    // Multivariate: Scott-like rule shared by every kernel (as Optuna).
                    let sigma = 0.2 * pow(Double(max(n, 1)), -1.0 / Double(parameters.count + 4)) * (high - low)
                    sigmas = [Double](repeating: sigma, count: n)
                }
                // Optuna's "magic clip": no kernel narrower than the range over min(100, kernels).
                let minSigma = (high - low) / min(100, 1 + Double(kernelCount))
                sigmas = sigmas.map { min(max($0, minSigma), high - low) }
                let allMus = mus + [0.5 * (low + high)], allSigmas = sigmas + [high - low]
                let logNormalisers = zip(allMus, allSigmas).map { mu, sigma in
                    Gaussian.logMass((low - mu) / sigma, (high - mu) / sigma) + (step == nil ? Foundation.log(sigma) : 0)
                }
                return .numeric(mus: allMus, sigmas: allSigmas, logNormalisers: logNormalisers, low: low, high: high, step: step, distribution: parameter.distribution)
            }
        }
    }

    /// Each kernel's width: the larger gap to its sorted neighbours (the bounds count as
    /// neighbours only for the extreme kernels' inner side, as Optuna without endpoints).
    static func neighbourSigmas(_ mus: [Double], low: Double, high: Double) -> [Double] {
        let n = mus.count
        guard n > 0 else { return [] }
        let order = mus.indices.sorted { mus[$0] < mus[$1] }
        let sorted = order.map { mus[$0] }
        let padded: [Double] = [low] + sorted + [high]
        var sortedSigmas: [Double] = (1...n).map { (i: Int) -> Double in
            let left: Double = padded[i] - padded[i - 1]
            let right: Double = padded[i + 1] - padded[i]
            return max(left, right)
        }
        if n >= 2 {
            sortedSigmas[0] = padded[2] - padded[1]
            sortedSigmas[n - 1] = padded[n] - padded[n - 1]
        }
        var sigmas = [Double](repeating: 0, count: n)
        for (position, index) in order.enumerated() { sigmas[index] = sortedSigmas[position] }
        return sigmas
    }

    /// The internal interval of a numeric distribution: widened by half a step so that
    /// every grid value owns an equal cell, then logged for log-scaled ones.
    static func internalBounds(_ distribution: Distribution) -> (low: Double, high: Double, step: Double?) {
        switch distribution {
        case .int(let low, let high, let step, let log):
            if log { return (Foundation.log(Double(low) - 0.5), Foundation.log(Double(high) + 0.5), nil) }
            return (Double(low) - 0.5 * Double(step), Double(high) + 0.5 * Double(step), Double(step))
        case .float(let low, let high, let step, let log):
            if log { return (Foundation.log(low), Foundation.log(high), nil) }
            if let step { return (low - 0.5 * step, high + 0.5 * step, step) }
            return (low, high, nil)
        case .categorical: return (0, 1, nil)
        }
    }

    static func toInternal(_ distribution: Distribution, _ value: ParameterValue) -> Double {
        let v = value.numericValue ?? 0
        switch distribution {
        case .int(_, _, _, true), .float(_, _, _, true): return Foundation.log(v)
        default: return v
        }
    }

    static func fromInternal(_ distribution: Distribution, _ x: Double) -> ParameterValue {
        switch distribution {
        case .int(_, _, _, let log): return .int(distribution.snapInt(log ? Foundation.exp(x) : x))
        case .float(_, _, _, let log): return .double(distribution.snapFloat(log ? Foundation.exp(x) : x))
        case .categorical(let choices): return choices[Int(x)]
        }
    }

    /// A draw: pick a kernel by weight, then each component from that kernel. Numeric
    /// draws are snapped to the grid here so that densities are evaluated at real values.
    func sample(using rng: inout SplitMix64) -> [Double] {
        var u = rng.nextUnit()
        var kernel = logWeights.count - 1
        for (k, lw) in logWeights.enumerated() {
            u -= Foundation.exp(lw)
            if u < 0 { kernel = k; break }
        }
        return components.map { component in
            switch component {
            case .numeric(let mus, let sigmas, _, let low, let high, _, let distribution):
                let x = Gaussian.sampleTruncated(mu: mus[kernel], sigma: sigmas[kernel], low: low, high: high, using: &rng)
                return ParzenEstimator.toInternal(distribution, ParzenEstimator.fromInternal(distribution, x))
            case .categorical(let logProbabilities, _):
                var v = rng.nextUnit()
                let row = logProbabilities[kernel]
                for (index, lp) in row.enumerated() {
                    v -= Foundation.exp(lp)
                    if v < 0 { return Double(index) }
                }
                return Double(row.count - 1)
            }
        }
    }

    func values(x: [Double]) -> [ParameterValue] {
        zip(components, x).map { component, value in
            switch component {
            case .numeric(_, _, _, _, _, _, let distribution): return ParzenEstimator.fromInternal(distribution, value)
            case .categorical(_, let choices): return choices[Int(value)]
            }
        }
    }

    /// log of the mixture density (or mass, for discrete components) at `x`.
    func logDensity(_ x: [Double]) -> Double {
        var perKernel = logWeights
        for (component, value) in zip(components, x) {
            switch component {
            case .numeric(let mus, let sigmas, let logNormalisers, let low, let high, let step, _):
                if let step {
                    let cellLow: Double = max(value - 0.5 * step, low)
                    let cellHigh: Double = min(value + 0.5 * step, high)
                    for k in perKernel.indices {
                        let a = (cellLow - mus[k]) / sigmas[k]
                        let b = (cellHigh - mus[k]) / sigmas[k]
                        perKernel[k] += Gaussian.logMass(a, b) - logNormalisers[k]
                    }
                } else {
                    perKernel.withUnsafeMutableBufferPointer { out in
                        for k in out.indices {
                            let z = (value - mus[k]) / sigmas[k]
                            out[k] += -0.5 * z * z - Gaussian.logSqrt2Pi - logNormalisers[k]
                        }
                    }
                }
            case .categorical(let logProbabilities, _):
                let index = Int(value)
                for k in perKernel.indices { perKernel[k] += logProbabilities[k][index] }
            }
        }
        return logSumExp(perKernel)
    }
}
