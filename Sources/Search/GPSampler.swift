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
