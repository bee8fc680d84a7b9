import Foundation
import Randomness

/// Bayesian optimisation with Gaussian processes.
///
/// Each objective gets a GP with a Matern 5/2 ARD kernel over the unit-cube encoding of
/// the parameters (categoricals one-hot, one length scale per categorical parameter),
/// fitted to the standardised losses at the maximum a posteriori point of the marginal
/// likelihood (projected L-BFGS on the log length scales, signal and noise variances, with
/// a weak prior on the length scales). The next point maximises log expected improvement
/// for one objective, or expected hypervolume improvement for several (exact for two,
/// Monte Carlo beyond). The acquisition is optimised like a box-constrained quasi-Newton
/// method would: random candidates and observed non-dominated trials with one number
/// redrawn, then projected gradient ascent (finite differences) on the numeric coordinates
/// of the best few random ones and of a few observed non-dominated trials, so a proposal
/// lands on a bound only when the acquisition still rises towards it;
/// categorical coordinates are refined by exhaustive one-parameter moves, then random
/// local moves. A point already finished or running is never proposed while another
/// candidate is left. Only feasible trials are modelled when there are any.
///
/// Cost: the hyperparameters are fitted on at most `maxFitPoints` trials (a seeded random
/// subset beyond that: each optimiser step costs a factorisation, cubic in the points),
/// and only when the number of modelled trials reaches a multiple of `refitInterval`: a
/// trial then fits on the first multiple-of-`refitInterval` modelled trials, so the
/// trials up to the next multiple reuse that fit (memoised per process, see
/// `HyperparameterCache`; proposals stay a function of the history alone). One more trial
/// barely moves the fit, and the fit was most of the cost below a few hundred trials. The
/// posterior then conditions on every trial, with one factorisation.
public struct GPSampler: Sampler {
    public var startupTrials: Int
    public var candidates: Int
    /// Most quasi-Newton iterations of the hyperparameter fit (it usually converges sooner).
    public var fitIterations: Int
    /// Posterior draws per candidate for expected hypervolume improvement.
    public var monteCarloSamples: Int
    /// Most trials used to fit the kernel hyperparameters.
    public var maxFitPoints: Int
    /// The hyperparameters are refitted every this many modelled trials (1: every trial).
    public var refitInterval: Int
    /// Best random candidates refined by local search.
    public var localStarts: Int
    /// Further local-search starts at observed non-dominated trials.
    public var incumbentStarts: Int
    /// Extra candidates, each an observed non-dominated trial with one numeric parameter
    /// drawn afresh. Where the acquisition is sharp in most coordinates (ZDT2's tail at its
    /// optimum bound 0), random candidates and gradient steps from them never reach the
    /// good points, which differ from a front point in one coordinate only; a study then
    /// spent its trials beside its first front point (2 seeds in 10 stuck at 0.20). 16 beat
    /// 32 and 0 on 30 seeds of DTLZ2, ZDT3 and ZDT6 (docs/benchmarks.md).
    public var frontMoves: Int

    public init(startupTrials: Int = 10, candidates: Int = 256, fitIterations: Int = 100, monteCarloSamples: Int = 32, maxFitPoints: Int = 100,
                refitInterval: Int = 5, localStarts: Int = 4, incumbentStarts: Int = 2, frontMoves: Int = 16) {
        self.startupTrials = startupTrials
        self.candidates = candidates
        self.fitIterations = fitIterations
        self.monteCarloSamples = monteCarloSamples
        self.maxFitPoints = maxFitPoints
        self.refitInterval = refitInterval
        self.localStarts = localStarts
        self.incumbentStarts = incumbentStarts
        self.frontMoves = frontMoves
    }

    public var name: String { "gp" }

    static let gradientSteps = 25
    static let categoricalSteps = 20
    /// Most rounds of exhaustive categorical coordinate moves.
    static let categoricalSweeps = 6

    public func sample(space: SearchSpace, context: SamplingContext) -> [String: ParameterValue] {
        var rng = context.rng("gp")
        let complete = context.completed
        let feasible = complete.filter(\.isFeasible)
        let data = feasible.count >= 2 ? feasible : complete
        guard data.count >= startupTrials, data.count >= 2 else { return space.sampleUniform(using: &rng) }

        let encoder = UnitEncoder(space: space)
        let x = data.map { encoder.encode($0.parameters) }
        let losses = data.map { lossVector($0.values!, context.directions) }
        // The trials the hyperparameters are fitted on: the first multiple of refitInterval
        // (all of them before the first multiple), a subset seeded by their count beyond
        // maxFitPoints, so every trial until the next multiple makes the same fit.
        let interval = max(1, refitInterval)
        let fitCount = x.count < interval ? x.count : x.count - x.count % interval
        var subsetRng = SplitMix64(seed: context.seed, UInt64(fitCount), stableHash("gp-fit-subset"))
        let fitIndices = fitCount > maxFitPoints ? Array(Array(0..<fitCount).shuffled(using: &subsetRng).prefix(maxFitPoints)).sorted() : Array(0..<fitCount)
        let models = context.directions.indices.map { m in
            let y = losses.map { $0[m] }
            let hyperparameters = HyperparameterCache.shared.hyperparameters(x: fitIndices.map { x[$0] }, y: fitIndices.map { y[$0] },
                                                                             lengthScaleGroups: encoder.lengthScaleGroups, iterations: fitIterations)
            return GaussianProcess(x: x, y: y, hyperparameters: hyperparameters)
        }
        let frontIndices = Pareto.nonDominatedIndices(losses)
        let acquisition: ([[Double]]) -> [Double]
        if models.count == 1 {
            let best = models[0].standardisedY.min()!
            acquisition = { points in
                models[0].predict(points).map { logExpectedImprovement(best: best, mean: $0.mean, sd: $0.variance.squareRoot()) }
            }
        } else {
            let front = frontIndices.map { i in models.indices.map { models[$0].standardisedY[i] } }
            let reference = models.indices.map { m in models[m].standardisedY.max()! + 0.1 * (models[m].standardisedY.max()! - models[m].standardisedY.min()!) + 1e-9 }
            if models.count == 2 {
                // Exact expected hypervolume improvement (closed form for two objectives).
                let ehvi = ExpectedHypervolumeImprovement2D(front: front, reference: reference)
                acquisition = { points in
                    let first = models[0].predict(points), second = models[1].predict(points)
                    return points.indices.map { c in
                        ehvi.log(mean: (first[c].mean, second[c].mean), sd: (first[c].variance.squareRoot(), second[c].variance.squareRoot()))
                    }
                }
            } else {
                var drawRng = SplitMix64(seed: context.seed, UInt64(context.trialNumber), stableHash("gp-draws"))
                // Common random numbers across candidates make their comparison less noisy and
                // the acquisition a smooth function of the point.
                let draws = (0..<monteCarloSamples).map { _ in models.indices.map { _ in drawRng.nextGaussian() } }
                let improvement = HypervolumeImprovement(front: front, reference: reference)
                acquisition = { points in
                    let predictions = models.map { $0.predict(points) }
                    return points.indices.map { c in
                        var total = 0.0
                        var y = [Double](repeating: 0, count: models.count)
                        for draw in draws {
                            for m in models.indices { y[m] = predictions[m][c].mean + predictions[m][c].variance.squareRoot() * draw[m] }
                            total += improvement.of(y)
                        }
                        return Foundation.log(max(total / Double(draws.count), 1e-300))
                    }
                }
            }
        }
        // Local search also starts from observed non-dominated trials (a seeded few): the
        // optimum often lies next to one, sometimes on a bound a random start seldom reaches.
        let incumbents = frontIndices.shuffled(using: &rng).prefix(incumbentStarts).map { data[$0].parameters }
        // Front moves (see `frontMoves`); an all-categorical space has no number to redraw.
        let moves = frontIndices.isEmpty || !encoder.hasNumeric ? [] : (0..<frontMoves).map { _ in
            encoder.redrawingOneNumber(of: data[frontIndices[rng.nextIndex(below: frontIndices.count)]].parameters, rng: &rng)
        }
        // A trial that repeats a finished or running one teaches the model nothing and, in
        // NAS, costs a training; yet near a front point on a bound, where the posterior is
        // confident, the acquisition's maximum often is that very point (a study stuck on one
        // front segment re-proposed it for a quarter of its trials). So the choice skips them.
        let taken = Set(context.trials.compactMap { $0.state == .complete || $0.state == .running ? $0.parameters : nil })
        return maximise(acquisition, space: space, encoder: encoder, frontMoves: moves, incumbents: Array(incumbents), isTaken: taken.contains, rng: &rng)
    }

    /// Random candidates and front moves, then local search from the best few random ones
    /// and from the incumbents (all starts advance in lockstep so that each step is one
    /// batched posterior evaluation); front moves compete as they are. Returns the best
    /// point found that `isTaken` does not reject, falling back on the best candidate when
    /// every one is taken (a small space, exhausted).
    private func maximise(_ acquisition: ([[Double]]) -> [Double], space: SearchSpace, encoder: UnitEncoder, frontMoves: [[String: ParameterValue]],
                          incumbents: [[String: ParameterValue]], isTaken: ([String: ParameterValue]) -> Bool,
                          rng: inout SplitMix64) -> [String: ParameterValue] {
        let pool = (0..<max(1, candidates)).map { _ in space.sampleUniform(using: &rng) } + frontMoves + incumbents
        let poolScores = acquisition(pool.map(encoder.encode))
        // Local search starts from the best random candidates only: front moves cluster round
        // the front, and as further starts (crowding out random ones, or beside them) they
        // lost on ZDT3 and ZDT6.
        let order = pool.indices.prefix(max(1, candidates)).sorted { poolScores[$0] > poolScores[$1] }
        let startIndices = Array(order.prefix(localStarts)) + Array(pool.indices.suffix(incumbents.count))
        var starts = startIndices.map { (assignment: pool[$0], score: poolScores[$0]) }

        // Projected gradient ascent on the active numeric coordinates (unit cube).
        let numeric = starts.map { start in encoder.numericCoordinates(of: start.assignment) }
        if numeric.contains(where: { !$0.isEmpty }) {
            var points = starts.map { encoder.encode($0.assignment) }
            var scores = starts.map(\.score)
            var stepSizes = [Double](repeating: 0.1, count: starts.count)
            let h = 1e-4
            for _ in 0..<Self.gradientSteps {
                // A start whose step has shrunk below the difference width has converged:
                // it leaves the batch, and the others' steps cost less.
                let active = points.indices.filter { stepSizes[$0] >= h }
                if active.isEmpty { break }
                // One batch: every active start nudged along each of its coordinates.
                var batch: [[Double]] = []
                var offsets = [Int](repeating: 0, count: points.count)
                for s in active {
                    let point = points[s]
                    offsets[s] = batch.count
                    for d in numeric[s] {
                        var nudged = point
                        nudged[d] += point[d] + h <= 1 ? h : -h
                        batch.append(nudged)
                    }
                }
                let nudgedScores = acquisition(batch)
                var proposals: [[Double]] = []
                for s in active {
                    let point = points[s]
                    var gradient = [Double](repeating: 0, count: point.count)
                    var norm = 0.0
                    for (k, d) in numeric[s].enumerated() {
                        let direction: Double = point[d] + h <= 1 ? h : -h
                        let g = (nudgedScores[offsets[s] + k] - scores[s]) / direction
                        gradient[d] = g.isFinite ? g : 0
                        norm += gradient[d] * gradient[d]
                    }
                    norm = norm.squareRoot()
                    var proposal = point
                    if norm > 0 {
                        for d in numeric[s] { proposal[d] = min(max(point[d] + stepSizes[s] * gradient[d] / norm, 0), 1) }
                    }
                    proposals.append(proposal)
                }
                let proposalScores = acquisition(proposals)
                for (k, s) in active.enumerated() {
                    if proposalScores[k] > scores[s] {
                        points[s] = proposals[k]
                        scores[s] = proposalScores[k]
                        stepSizes[s] = min(stepSizes[s] * 1.5, 0.5)
                    } else {
                        stepSizes[s] *= 0.4
                    }
                }
            }
            // Back to parameter values (snapped to steps and integers), scored as proposed.
            let refined = points.indices.map { encoder.decode(points[$0], categoriesFrom: starts[$0].assignment) }
            let refinedScores = acquisition(refined.map(encoder.encode))
            for s in starts.indices where refinedScores[s] > starts[s].score {
                starts[s] = (refined[s], refinedScores[s])
            }
        }
        // Categories: coordinate moves, every other choice of every categorical parameter
        // scored at once, the best taken while it improves (Optuna's GP searches them
        // exhaustively one parameter at a time, as random single moves rarely find the
        // one change that pays).
        if encoder.hasCategorical {
            var improving = Set(starts.indices)
            for _ in 0..<Self.categoricalSweeps where !improving.isEmpty {
                let active = improving.sorted()
                let neighbours = active.map { encoder.categoricalNeighbours(of: starts[$0].assignment, rng: &rng) }
                let scores = acquisition(neighbours.flatMap { $0 }.map(encoder.encode))
                var offset = 0
                for (k, s) in active.enumerated() {
                    let count = neighbours[k].count
                    let slice = scores[offset..<offset + count]
                    offset += count
                    if let best = slice.indices.max(by: { slice[$0] < slice[$1] }), slice[best] > starts[s].score {
                        starts[s] = (neighbours[k][best - slice.startIndex], slice[best])
                    } else {
                        improving.remove(s)
                    }
                }
            }
        }
        // Random local moves, for categories (and as a fallback for snapped numbers).
        if encoder.hasCategorical {
            var scales = [Double](repeating: 0.1, count: starts.count)
            for _ in 0..<Self.categoricalSteps {
                let proposals = starts.indices.map { encoder.perturb(starts[$0].assignment, scale: scales[$0], rng: &rng) }
                let scores = acquisition(proposals.map(encoder.encode))
                for s in starts.indices {
                    if scores[s] > starts[s].score { starts[s] = (proposals[s], scores[s]) } else { scales[s] = max(scales[s] * 0.7, 0.005) }
                }
            }
        }
        let found = starts + pool.indices.map { (assignment: pool[$0], score: poolScores[$0]) }
        let best = found.filter { !isTaken($0.assignment) }.max { $0.score < $1.score } ?? found.max { $0.score < $1.score }!
        return best.assignment
    }
}

/// Expected hypervolume improvement of Y ~ N(mean, diag(sd^2)) over a two-objective front
/// (losses), exactly. The region the front does not dominate, inside the reference box, is
/// a union of strips [a_i, a_i+1) x (-inf, b_i) (front sorted by the first objective, a_0 =
/// -inf, a_k+1 = reference, b_0 = reference); E[HVI] = integral over it of
/// P(Y1 <= z1) P(Y2 <= z2), and the integral of a normal CDF is sd * psi((z - mean) / sd)
/// with psi(t) = phi(t) + t Phi(t). Computed in log space so that it stays informative
/// far from the front.
struct ExpectedHypervolumeImprovement2D {
    /// Strip bounds: firsts[i] = a_i (i = 0...k+1), seconds[i] = b_i (i = 0...k).
    let firsts: [Double]
    let seconds: [Double]

    init(front: [[Double]], reference: [Double]) {
        // Only points inside the reference box matter; keep a strict staircase.
        let inside = front.filter { $0[0] < reference[0] && $0[1] < reference[1] }
            .sorted { $0[0] < $1[0] || ($0[0] == $1[0] && $0[1] < $1[1]) }
        var a: [Double] = [-.infinity], b: [Double] = [reference[1]]
        for p in inside where p[1] < b.last! {
            a.append(p[0])
            b.append(p[1])
        }
        a.append(reference[0])
        firsts = a
        seconds = b
    }

    func log(mean: (Double, Double), sd: (Double, Double)) -> Double {
        let s1 = max(sd.0, 1e-12), s2 = max(sd.1, 1e-12)
        var terms: [Double] = []
        terms.reserveCapacity(seconds.count)
        var lowerLogPsi = -Double.infinity // log psi at a_0 = -inf
        for i in seconds.indices {
            let upperLogPsi = logPsi((firsts[i + 1] - mean.0) / s1)
            // log(psi(u) - psi(l)) with psi(l) <= psi(u).
            let width = lowerLogPsi == -.infinity ? upperLogPsi : upperLogPsi + Foundation.log1p(-Foundation.exp(min(lowerLogPsi - upperLogPsi, 0)))
            lowerLogPsi = upperLogPsi
            guard width.isFinite else { continue }
            terms.append(width + logPsi((seconds[i] - mean.1) / s2))
        }
        return Foundation.log(s1) + Foundation.log(s2) + logSumExp(terms)
    }
}

/// log(phi(t) + t Phi(t)), the integral of the standard normal CDF up to t.
func logPsi(_ t: Double) -> Double {
    if t > -5 { return Foundation.log(max(Foundation.exp(Gaussian.logPDF(t)) + t * Gaussian.cdf(t), 1e-300)) }
    // phi(t) + t Phi(t) ~ phi(t) / t^2 * (1 - 3 / t^2) as t -> -infinity.
    return Gaussian.logPDF(t) - 2 * Foundation.log(-t) + Foundation.log1p(-3 / (t * t))
}

/// Hypervolume gained by adding one point to a fixed front (losses, all objectives
/// minimised): an allocation-free sweep for two objectives, the general algorithm else.
struct HypervolumeImprovement {
    let front: [[Double]]
    let reference: [Double]
    let baseVolume: Double
    /// Two objectives: the front sorted by the first.
    let sortedFirst: [Double]
    let sortedSecond: [Double]

    init(front: [[Double]], reference: [Double]) {
        self.front = front
        self.reference = reference
        baseVolume = Pareto.hypervolume(front, reference: reference)
        let sorted = front.sorted { $0[0] < $1[0] || ($0[0] == $1[0] && $0[1] < $1[1]) }
        sortedFirst = reference.count == 2 ? sorted.map { $0[0] } : []
        sortedSecond = reference.count == 2 ? sorted.map { $0[1] } : []
    }

    func of(_ y: [Double]) -> Double {
        guard reference.count == 2 else {
            if front.contains(where: { f in zip(f, y).allSatisfy { $0 <= $1 } }) { return 0 }
            return max(Pareto.hypervolume(front + [y], reference: reference) - baseVolume, 0)
        }
        let r0 = reference[0], r1 = reference[1]
        guard y[0] < r0, y[1] < r1 else { return 0 }
        // The box y dominates, less the part the front already dominates: the front's
        // points clipped to the box form a staircase, swept in order of the first objective.
        var covered = 0.0, level = r1
        for k in sortedFirst.indices {
            let a = max(sortedFirst[k], y[0])
            if a >= r0 { break }
            let b = max(sortedSecond[k], y[1])
            if b < level {
                covered += (r0 - a) * (level - b)
                level = b
            }
        }
        return max((r0 - y[0]) * (r1 - y[1]) - covered, 0)
    }
}

/// log E[max(best - Y, 0)] for Y ~ N(mean, sd^2), stable far in the tail.
func logExpectedImprovement(best: Double, mean: Double, sd: Double) -> Double {
    let sd = max(sd, 1e-12)
    let z = (best - mean) / sd
    let logH: Double
    if z > -5 {
        logH = Foundation.log(max(Foundation.exp(Gaussian.logPDF(z)) + z * Gaussian.cdf(z), 1e-300))
    } else {
        // phi(z) + z Phi(z) ~ phi(z) / z^2 * (1 - 3 / z^2) as z -> -infinity.
        logH = Gaussian.logPDF(z) - 2 * Foundation.log(-z) + Foundation.log1p(-3 / (z * z))
    }
    return Foundation.log(sd) + logH
}

/// Unit-cube encoding of assignments: one coordinate per numeric parameter, one-hot per
/// categorical; inactive parameters sit at the centre (numbers) or all zeros (categories).
struct UnitEncoder {
    let space: SearchSpace
    let width: Int

    init(space: SearchSpace) {
        self.space = space
        width = space.parameters.reduce(0) { total, p in
            if case .categorical(let choices) = p.distribution { return total + choices.count }
            return total + 1
        }
    }

    func encode(_ assignment: [String: ParameterValue]) -> [Double] {
        var x: [Double] = []
        x.reserveCapacity(width)
        for parameter in space.parameters {
            let value = assignment[parameter.name]
            if case .categorical(let choices) = parameter.distribution {
                for choice in choices { x.append(choice == value ? 1 : 0) }
            } else {
                x.append(value.map { parameter.distribution.toUnit($0) } ?? 0.5)
            }
        }
        return x
    }

    /// For each encoded coordinate, the parameter it belongs to: a categorical's one-hot
    /// coordinates share one length scale, so that the kernel sees "same or different
    /// category" (a Hamming distance, as Optuna's GP does) with one hyperparameter per
    /// parameter rather than one per category, which 100 trials cannot fit.
    var lengthScaleGroups: [Int] {
        space.parameters.enumerated().flatMap { index, parameter -> [Int] in
            if case .categorical(let choices) = parameter.distribution { return Array(repeating: index, count: choices.count) }
            return [index]
        }
    }

    /// Every assignment that differs from `assignment` in one active categorical parameter;
    /// parameters this activates are drawn at random, those it deactivates are dropped.
    func categoricalNeighbours(of assignment: [String: ParameterValue], rng: inout SplitMix64) -> [[String: ParameterValue]] {
        space.parameters.flatMap { parameter -> [[String: ParameterValue]] in
            guard case .categorical(let choices) = parameter.distribution, let current = assignment[parameter.name] else { return [] }
            return choices.filter { $0 != current }.map { choice in
                var result: [String: ParameterValue] = [:]
                for other in space.parameters where space.isActive(other, in: result) {
                    result[other.name] = other.name == parameter.name ? choice : (assignment[other.name] ?? other.distribution.sampleUniform(using: &rng))
                }
                return result
            }
        }
    }

    var hasCategorical: Bool {
        space.parameters.contains { if case .categorical = $0.distribution { return true } else { return false } }
    }

    var hasNumeric: Bool {
        space.parameters.contains { if case .categorical = $0.distribution { return false } else { return true } }
    }

    /// Encoded positions of the numeric parameters active in `assignment`.
    func numericCoordinates(of assignment: [String: ParameterValue]) -> [Int] {
        var result: [Int] = []
        var position = 0
        for parameter in space.parameters {
            if case .categorical(let choices) = parameter.distribution {
                position += choices.count
                continue
            }
            if assignment[parameter.name] != nil { result.append(position) }
            position += 1
        }
        return result
    }

    /// Numeric values read back from an encoded point (snapped to their grids); categories
    /// and which parameters are active come from `base`.
    func decode(_ x: [Double], categoriesFrom base: [String: ParameterValue]) -> [String: ParameterValue] {
        var result = base
        var position = 0
        for parameter in space.parameters {
            if case .categorical(let choices) = parameter.distribution {
                position += choices.count
                continue
            }
            if base[parameter.name] != nil { result[parameter.name] = parameter.distribution.fromUnit(x[position]) }
            position += 1
        }
        return result
    }

    /// `assignment` with one of its active numeric parameters (if any) drawn afresh.
    func redrawingOneNumber(of assignment: [String: ParameterValue], rng: inout SplitMix64) -> [String: ParameterValue] {
        let numeric = space.parameters.filter { parameter in
            if case .categorical = parameter.distribution { return false }
            return assignment[parameter.name] != nil
        }
        guard !numeric.isEmpty else { return assignment }
        let parameter = numeric[rng.nextIndex(below: numeric.count)]
        var result = assignment
        result[parameter.name] = parameter.distribution.sampleUniform(using: &rng)
        return result
    }

    /// A neighbour: numbers moved by a Gaussian step in the unit cube, and one parameter's
    /// category (if any) redrawn with probability 1/number of parameters.
    func perturb(_ assignment: [String: ParameterValue], scale: Double, rng: inout SplitMix64) -> [String: ParameterValue] {
        var result: [String: ParameterValue] = [:]
        let p = 1 / Double(space.parameters.count)
        for parameter in space.parameters where space.isActive(parameter, in: result) {
            let distribution = parameter.distribution
            guard let value = assignment[parameter.name] else {
                result[parameter.name] = distribution.sampleUniform(using: &rng)
                continue
            }
            if case .categorical = distribution {
                result[parameter.name] = rng.nextUnit() < p ? distribution.sampleUniform(using: &rng) : value
            } else {
                let u = distribution.toUnit(value) + scale * rng.nextGaussian()
                result[parameter.name] = distribution.fromUnit(min(max(u, 0), 1))
            }
        }
        return result
    }
}

/// A fitted GP regression model on standardised targets.
struct GaussianProcess {
    let x: [[Double]]
    let standardisedY: [Double]
    let lengthScales: [Double]
    let signalVariance: Double
    let noiseVariance: Double
    /// Cholesky factor of K + noise I (row-major, lower) and alpha = K^-1 y.
    let cholesky: [Double]
    let alpha: [Double]

    static func matern52(_ a: [Double], _ b: [Double], lengthScales: [Double], signal: Double) -> Double {
        var r2 = 0.0
        for d in a.indices {
            let t = (a[d] - b[d]) / lengthScales[d]
            r2 += t * t
        }
        let r = (5 * r2).squareRoot()
        return signal * (1 + r + r * r / 3) * Foundation.exp(-r)
    }

    /// Kernel hyperparameters: ARD length scales, signal and noise variances.
    struct Hyperparameters: Sendable {
        let lengthScales: [Double]
        let signalVariance: Double
        let noiseVariance: Double
    }

    /// Fits the hyperparameters: the maximum a posteriori point of the log marginal
    /// likelihood of the points (targets standardised over them) with a log-normal prior on
    /// the length scales, found by a projected quasi-Newton method (L-BFGS) inside the
    /// bounds. Coordinates with the same entry in `lengthScaleGroups` (default: each its own)
    /// share one length scale. `iterations` bounds the quasi-Newton steps; the fit usually
    /// converges in far fewer. (A fixed budget of 100 first-order steps, as before, stopped
    /// short: length scales of irrelevant inputs were still growing, and on DTLZ7 a study
    /// in five then never left one segment of the front.)
    static func fitHyperparameters(x: [[Double]], y rawY: [Double], lengthScaleGroups: [Int]? = nil, iterations: Int) -> Hyperparameters {
        let dims = x[0].count
        let groups = lengthScaleGroups ?? Array(0..<dims)
        precondition(groups.count == dims, "one length-scale group per coordinate")
        let y = standardised(rawY)
        let n = x.count
        // theta = [log l for each group, log signal, log noise]; group ids renumbered 0..<G.
        let groupIDs = Array(Set(groups)).sorted()
        let groupOf = groups.map { groupIDs.firstIndex(of: $0)! }
        let groupCount = groupIDs.count
        // Squared differences summed within each group: the kernel depends on a group's
        // coordinates only through that sum, so the fit runs with one dimension per group.
        var differences = [Double](repeating: 0, count: n * n * groupCount)
        for i in 0..<n { for j in 0..<n { for d in 0..<dims {
            let t = x[i][d] - x[j][d]
            differences[(i * n + j) * groupCount + groupOf[d]] += t * t
        } } }
        let priorCentre = Foundation.log(0.5), priorWidth = 1.5
        let lower = [Double](repeating: Foundation.log(1e-2), count: groupCount) + [Foundation.log(0.05), Foundation.log(1e-6)]
        let upper = [Double](repeating: Foundation.log(20), count: groupCount) + [Foundation.log(20), Foundation.log(0.5)]
        let objective = { (theta: [Double]) -> (value: Double, gradient: [Double])? in
            guard var result = negativeLogLikelihood(theta: theta, y: y, n: n, dims: groupCount, squaredDifferences: differences) else { return nil }
            for d in 0..<groupCount {
                let z = (theta[d] - priorCentre) / priorWidth
                result.value += 0.5 * z * z
                result.gradient[d] += z / priorWidth
            }
            return result
        }
        let start = [Double](repeating: priorCentre, count: groupCount) + [0, Foundation.log(1e-2)]
        let theta = minimiseInBox(objective, from: start, lower: lower, upper: upper, iterations: iterations)
        return Hyperparameters(lengthScales: groupOf.map { Foundation.exp(theta[$0]) },
                               signalVariance: Foundation.exp(theta[groupCount]), noiseVariance: Foundation.exp(theta[groupCount + 1]))
    }

    /// Targets with zero mean and unit variance (a constant stays at zero).
    static func standardised(_ y: [Double]) -> [Double] {
        let mean = y.reduce(0, +) / Double(y.count)
        let sd = max((y.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(y.count)).squareRoot(), 1e-12)
        return y.map { ($0 - mean) / sd }
    }

    private static func identityFactor(_ n: Int) -> [Double] {
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n { l[i * n + i] = 1 }
        return l
    }

    private static func factorise(x: [[Double]], lengthScales: [Double], signal: Double, noise: Double) -> ([Double]?, [Double]) {
        let n = x.count
        var k = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                let value = matern52(x[i], x[j], lengthScales: lengthScales, signal: signal) + (i == j ? noise + 1e-8 : 0)
                k[i * n + j] = value
                k[j * n + i] = value
            }
        }
        return (choleskyFactor(k, n: n), k)
    }

    /// The negative log marginal likelihood (without its constant n/2 log 2 pi) and its
    /// gradient in theta; nil when K is not positive definite.
    private static func negativeLogLikelihood(theta: [Double], y: [Double], n: Int, dims: Int,
                                              squaredDifferences: [Double]) -> (value: Double, gradient: [Double])? {
        let lengthScales = theta.prefix(dims).map { Foundation.exp($0) }
        let signal = Foundation.exp(theta[dims]), noise = Foundation.exp(theta[dims + 1])
        var k = [Double](repeating: 0, count: n * n)
        var radial = [Double](repeating: 0, count: n * n) // (5/3)(1 + sqrt5 r) exp(-sqrt5 r) * signal
        let inverseSquares = lengthScales.map { 1 / ($0 * $0) }
        for i in 0..<n {
            for j in 0...i {
                var r2 = 0.0
                let base = (i * n + j) * dims
                for d in 0..<dims { r2 += squaredDifferences[base + d] * inverseSquares[d] }
                let r = (5 * r2).squareRoot()
                let e = Foundation.exp(-r)
                let value = signal * (1 + r + r * r / 3) * e
                k[i * n + j] = value; k[j * n + i] = value
                let dr = signal * (5.0 / 3.0) * (1 + r) * e
                radial[i * n + j] = dr; radial[j * n + i] = dr
            }
        }
        var kNoisy = k
        for i in 0..<n { kNoisy[i * n + i] += noise + 1e-8 }
        guard let l = choleskyFactor(kNoisy, n: n) else { return nil }
        let alpha = choleskySolve(l, y, n: n)
        let inverse = choleskyInverse(l, n: n)
        // W = K^-1 - alpha alpha^T; dNLL/dtheta = 0.5 tr(W dK/dtheta).
        var gradient = [Double](repeating: 0, count: dims + 2)
        var traceSignal = 0.0, traceNoise = 0.0
        for i in 0..<n {
            for j in 0..<n {
                let w = inverse[i * n + j] - alpha[i] * alpha[j]
                traceSignal += w * k[i * n + j]
                if i == j { traceNoise += w * noise }
                let dr = radial[i * n + j] * w
                if dr != 0 {
                    let base = (i * n + j) * dims
                    for d in 0..<dims { gradient[d] += dr * squaredDifferences[base + d] * inverseSquares[d] }
                }
            }
        }
        for d in 0..<dims { gradient[d] *= 0.5 }
        gradient[dims] = 0.5 * traceSignal
        gradient[dims + 1] = 0.5 * traceNoise
        // 0.5 y^T K^-1 y + 0.5 log det K, the determinant from the factor's diagonal.
        var value = 0.0
        for i in 0..<n { value += 0.5 * y[i] * alpha[i] + Foundation.log(l[i * n + i]) }
        return (value, gradient)
    }

    /// Posterior mean and variance (of the latent function) at `point`.
    func predict(_ point: [Double]) -> (mean: Double, variance: Double) {
        predict([point])[0]
    }

    /// Posterior means and variances at several points at once: the triangular solve
    /// L V = K* runs over all points together, which vectorises (the inner loop is over
    /// points, with no reduction).
    func predict(_ points: [[Double]]) -> [(mean: Double, variance: Double)] {
        // Chunks of points keep the working block (n x chunk) in cache.
        let chunk = 48
        guard points.count > chunk else { return predictChunk(points) }
        return stride(from: 0, to: points.count, by: chunk).flatMap { start in
            predictChunk(Array(points[start..<min(start + chunk, points.count)]))
        }
    }

    private func predictChunk(_ points: [[Double]]) -> [(mean: Double, variance: Double)] {
        let n = x.count, count = points.count, dims = lengthScales.count
        guard count > 0 else { return [] }
        let inverseScales = lengthScales.map { 1 / $0 }
        let scaledPoints = points.map { p in (0..<dims).map { p[$0] * inverseScales[$0] } }
        // v[i * width + c] = k(x_i, point_c), then overwritten by L^-1 k*; rows padded with
        // zero columns to a multiple of 4 for the blocked solve.
        let width = (count + 3) & ~3
        var v = [Double](repeating: 0, count: n * width)
        var means = [Double](repeating: 0, count: count)
        var squared = [Double](repeating: 0, count: width)
        v.withUnsafeMutableBufferPointer { v in
            for i in 0..<n {
                let xi = (0..<dims).map { x[i][$0] * inverseScales[$0] }
                let row = i * width
                for c in 0..<count {
                    var r2 = 0.0
                    for d in 0..<dims {
                        let t = scaledPoints[c][d] - xi[d]
                        r2 += t * t
                    }
                    let r = (5 * r2).squareRoot()
                    let k = signalVariance * (1 + r + r * r / 3) * Foundation.exp(-r)
                    v[row + c] = k
                    means[c] += k * alpha[i]
                }
            }
            cholesky.withUnsafeBufferPointer { l in
                squared.withUnsafeMutableBufferPointer { squared in
                    forwardSubstitution(l, n: n, v.baseAddress!, width: width, squaredNorms: squared.baseAddress!)
                }
            }
        }
        return (0..<count).map { (means[$0], max(signalVariance - squared[$0], 1e-12)) }
    }
}

/// Overwrites the n x width block `v` (row-major, width a multiple of 4) with L^-1 v, L
/// lower triangular (row-major n x n), and adds each column's squared norm to
/// `squaredNorms`. Row i is v_i = (v_i - sum_j<i L_ij v_j) / L_ii, summed in j order as a
/// row-by-row solve would, but four rows at a time over four columns at a time: each
/// loaded v_j feeds four rows, where the row-by-row solve reloaded it for every row and
/// was bound by memory traffic (the GP's acquisition spends most of its time here).
func forwardSubstitution(_ l: UnsafeBufferPointer<Double>, n: Int, _ v: UnsafeMutablePointer<Double>, width: Int, squaredNorms: UnsafeMutablePointer<Double>) {
    precondition(width % 4 == 0, "width must be a multiple of 4")
    let raw = UnsafeMutableRawPointer(v), rawSquared = UnsafeMutableRawPointer(squaredNorms)
    @inline(__always) func load(_ row: Int, _ c: Int) -> SIMD4<Double> {
        raw.loadUnaligned(fromByteOffset: (row &* width &+ c) &* 8, as: SIMD4<Double>.self)
    }
    @inline(__always) func store(_ value: SIMD4<Double>, _ row: Int, _ c: Int) {
        raw.storeBytes(of: value, toByteOffset: (row &* width &+ c) &* 8, as: SIMD4<Double>.self)
    }
    @inline(__always) func addSquare(_ value: SIMD4<Double>, _ c: Int) {
        let total = rawSquared.loadUnaligned(fromByteOffset: c &* 8, as: SIMD4<Double>.self)
        rawSquared.storeBytes(of: total + value * value, toByteOffset: c &* 8, as: SIMD4<Double>.self)
    }
    @inline(__always) func minus(_ i: Int, _ j: Int) -> SIMD4<Double> { SIMD4(repeating: -l[i &* n &+ j]) }
    @inline(__always) func diagonal(_ i: Int) -> SIMD4<Double> { SIMD4(repeating: l[i &* n &+ i]) }
    var i0 = 0
    while i0 &+ 4 <= n {
        let (i1, i2, i3) = (i0 &+ 1, i0 &+ 2, i0 &+ 3)
        for c in stride(from: 0, to: width, by: 4) {
            var v0 = load(i0, c), v1 = load(i1, c), v2 = load(i2, c), v3 = load(i3, c)
            for j in 0..<i0 {
                let vj = load(j, c)
                v0 = v0 + minus(i0, j) * vj
                v1 = v1 + minus(i1, j) * vj
                v2 = v2 + minus(i2, j) * vj
                v3 = v3 + minus(i3, j) * vj
            }
            // The block's own triangle, in the same j order.
            v0 = v0 / diagonal(i0)
            v1 = (v1 + minus(i1, i0) * v0) / diagonal(i1)
            v2 = (v2 + minus(i2, i0) * v0 + minus(i2, i1) * v1) / diagonal(i2)
            v3 = (v3 + minus(i3, i0) * v0 + minus(i3, i1) * v1 + minus(i3, i2) * v2) / diagonal(i3)
            store(v0, i0, c); store(v1, i1, c); store(v2, i2, c); store(v3, i3, c)
            addSquare(v0, c); addSquare(v1, c); addSquare(v2, c); addSquare(v3, c)
        }
        i0 &+= 4
    }
    for i in i0..<n {
        for c in stride(from: 0, to: width, by: 4) {
            var vi = load(i, c)
            for j in 0..<i { vi = vi + minus(i, j) * load(j, c) }
            vi = vi / diagonal(i)
            store(vi, i, c)
            addSquare(vi, c)
        }
    }
}

extension GaussianProcess {
    /// The posterior given every point (targets standardised over them) and fitted
    /// hyperparameters.
    init(x: [[Double]], y rawY: [Double], hyperparameters: Hyperparameters) {
        let allY = Self.standardised(rawY)
        let lengthScales = hyperparameters.lengthScales
        let signal = hyperparameters.signalVariance, noise = hyperparameters.noiseVariance
        var (l, _) = Self.factorise(x: x, lengthScales: lengthScales, signal: signal, noise: noise)
        if l == nil { l = Self.factorise(x: x, lengthScales: lengthScales, signal: signal, noise: noise + 1e-4).0 }
        let factor = l ?? Self.identityFactor(x.count)
        self.init(x: x, standardisedY: allY, lengthScales: lengthScales, signalVariance: signal, noiseVariance: noise,
                  cholesky: factor, alpha: choleskySolve(factor, allY, n: x.count))
    }
}

/// Fitted hyperparameters by their exact inputs, process-wide: the trials between two
/// refits fit the same points (see `GPSampler.refitInterval`), and only the first of them
/// needs to. A pure memo: a hit returns what the fit would, so what a process asked before
/// never changes a proposal. Holds a few recent fits (a study's objectives, a few studies).
final class HyperparameterCache: @unchecked Sendable {
    static let shared = HyperparameterCache()
    private static let capacity = 16

    private struct Entry {
        let x: [[Double]]
        let y: [Double]
        let lengthScaleGroups: [Int]
        let iterations: Int
        let hyperparameters: GaussianProcess.Hyperparameters
    }

    private let lock = NSLock()
    private var entries: [Entry] = [] // oldest first

    func hyperparameters(x: [[Double]], y: [Double], lengthScaleGroups: [Int], iterations: Int) -> GaussianProcess.Hyperparameters {
        if let hit = lookUp(x: x, y: y, lengthScaleGroups: lengthScaleGroups, iterations: iterations) { return hit }
        // Fitted outside the lock: concurrent studies do not wait for each other's fits.
        let fitted = GaussianProcess.fitHyperparameters(x: x, y: y, lengthScaleGroups: lengthScaleGroups, iterations: iterations)
        lock.lock()
        defer { lock.unlock() }
        entries.append(Entry(x: x, y: y, lengthScaleGroups: lengthScaleGroups, iterations: iterations, hyperparameters: fitted))
        if entries.count > Self.capacity { entries.removeFirst() }
        return fitted
    }

    private func lookUp(x: [[Double]], y: [Double], lengthScaleGroups: [Int], iterations: Int) -> GaussianProcess.Hyperparameters? {
        lock.lock()
        defer { lock.unlock() }
        return entries.last {
            $0.iterations == iterations && $0.lengthScaleGroups == lengthScaleGroups && $0.y == y && $0.x == x
        }?.hyperparameters
    }
}

/// Lower Cholesky factor of a symmetric matrix (row-major), nil if not positive definite.
/// Right-looking, on the upper triangle: after column k is scaled, row i of the trailing
/// block loses U[k][i] * U[k][i...], an update over contiguous memory that vectorises.
/// The GP factorises once per optimiser step and once per model, so this dominates.
func choleskyFactor(_ a: [Double], n: Int) -> [Double]? {
    var u = a // upper triangle of each row i (columns i...) is the working matrix
    let ok = u.withUnsafeMutableBufferPointer { u -> Bool in
        for k in 0..<n {
            let rowK = k * n
            let pivot = u[rowK + k]
            guard pivot > 0 else { return false }
            let diagonal = pivot.squareRoot()
            u[rowK + k] = diagonal
            let scale = 1 / diagonal
            for j in (k + 1)..<max(n, k + 1) { u[rowK + j] *= scale }
            let base = u.baseAddress!
            for i in (k + 1)..<max(n, k + 1) {
                let factor = u[rowK + i]
                if factor == 0 { continue }
                axpy(-factor, base + rowK + i, base + i * n + i, n - i)
            }
        }
        return true
    }
    guard ok else { return nil }
    // L = U^T.
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0...i { l[i * n + j] = u[j * n + i] } }
    return l
}

/// y[0..<count] += a * x[0..<count], in SIMD blocks (the GP's linear algebra runs on this).
@inline(__always)
func axpy(_ a: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>, _ count: Int) {
    var c = 0
    let a4 = SIMD4<Double>(repeating: a)
    let rawX = UnsafeRawPointer(x), rawY = UnsafeMutableRawPointer(y)
    while c &+ 4 <= count {
        let xs = rawX.loadUnaligned(fromByteOffset: c &* 8, as: SIMD4<Double>.self)
        let ys = rawY.loadUnaligned(fromByteOffset: c &* 8, as: SIMD4<Double>.self)
        rawY.storeBytes(of: ys + a4 * xs, toByteOffset: c &* 8, as: SIMD4<Double>.self)
        c &+= 4
    }
    while c < count {
        y[c] += a * x[c]
        c &+= 1
    }
}

/// Solves (L L^T) x = b.
func choleskySolve(_ l: [Double], _ b: [Double], n: Int) -> [Double] {
    var z = b
    for i in 0..<n {
        var s = z[i]
        for k in 0..<i { s -= l[i * n + k] * z[k] }
        z[i] = s / l[i * n + i]
    }
    for i in stride(from: n - 1, through: 0, by: -1) {
        var s = z[i]
        for k in (i + 1)..<max(n, i + 1) { s -= l[k * n + i] * z[k] }
        z[i] = s / l[i * n + i]
    }
    return z
}

/// (L L^T)^-1 = L^-T L^-1, from the inverse of L, both built row by row.
func choleskyInverse(_ l: [Double], n: Int) -> [Double] {
    var inverseL = [Double](repeating: 0, count: n * n)
    var result = [Double](repeating: 0, count: n * n)
    var accumulator = [Double](repeating: 0, count: n)
    l.withUnsafeBufferPointer { l in
        inverseL.withUnsafeMutableBufferPointer { inv in
            accumulator.withUnsafeMutableBufferPointer { acc in
                // Row i of L^-1: inv[i][j] = -(sum_k L[i][k] inv[k][j]) / L[i][i] for j < i.
                for i in 0..<n {
                    for j in 0..<i { acc[j] = 0 }
                    for k in 0..<i {
                        let a = l[i * n + k]
                        if a == 0 { continue }
                        axpy(a, inv.baseAddress! + k * n, acc.baseAddress!, k + 1)
                    }
                    let diagonal = l[i * n + i]
                    for j in 0..<i { inv[i * n + j] = -acc[j] / diagonal }
                    inv[i * n + i] = 1 / diagonal
                }
            }
            result.withUnsafeMutableBufferPointer { out in
                // out[i][j] = sum_k inv[k][i] inv[k][j] (k >= max(i, j)); lower half, then mirror.
                for k in 0..<n {
                    let rowK = k * n
                    for i in 0...k {
                        let a = inv[rowK + i]
                        if a == 0 { continue }
                        axpy(a, inv.baseAddress! + rowK, out.baseAddress! + i * n, i + 1)
                    }
                }
                for i in 0..<n { for j in 0..<i { out[j * n + i] = out[i * n + j] } }
            }
        }
    }
    return result
}
