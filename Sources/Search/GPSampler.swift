import Foundation
import Randomness

/// Bayesian optimisation with Gaussian processes.
///
/// Each objective gets a GP with a Matern 5/2 ARD kernel over the unit-cube encoding of
/// the parameters (categoricals one-hot), fitted to the standardised losses by maximising
/// the log marginal likelihood (Adam on the log length scales, signal and noise variances,
/// with a weak prior on the length scales). The next point maximises log expected
/// improvement for one objective, or Monte Carlo expected hypervolume improvement for
/// several; the acquisition is optimised by random candidates refined by local search.
/// Only feasible trials are modelled when there are any.
public struct GPSampler: Sampler {
    public var startupTrials: Int
    public var candidates: Int
    public var fitIterations: Int
    /// Posterior draws per candidate for expected hypervolume improvement.
    public var monteCarloSamples: Int

    public init(startupTrials: Int = 10, candidates: Int = 256, fitIterations: Int = 40, monteCarloSamples: Int = 32) {
        self.startupTrials = startupTrials
        self.candidates = candidates
        self.fitIterations = fitIterations
        self.monteCarloSamples = monteCarloSamples
    }

    public var name: String { "gp" }

    public func sample(space: SearchSpace, context: SamplingContext) -> [String: ParameterValue] {
        var rng = context.rng("gp")
        let complete = context.completed
        let feasible = complete.filter(\.isFeasible)
        let data = feasible.count >= 2 ? feasible : complete
        guard data.count >= startupTrials, data.count >= 2 else { return space.sampleUniform(using: &rng) }

        let encoder = UnitEncoder(space: space)
        let x = data.map { encoder.encode($0.parameters) }
        let losses = data.map { lossVector($0.values!, context.directions) }
        let models = context.directions.indices.map { m in
            GaussianProcess.fit(x: x, y: losses.map { $0[m] }, iterations: fitIterations)
        }
        let acquisition: ([Double]) -> Double
        if models.count == 1 {
            let best = models[0].standardisedY.min()!
            acquisition = { point in
                let (mean, variance) = models[0].predict(point)
                return logExpectedImprovement(best: best, mean: mean, sd: variance.squareRoot())
            }
        } else {
            let front = Pareto.nonDominatedIndices(losses).map { i in models.indices.map { models[$0].standardisedY[i] } }
            let reference = models.indices.map { m in models[m].standardisedY.max()! + 0.1 * (models[m].standardisedY.max()! - models[m].standardisedY.min()!) + 1e-9 }
            let baseVolume = Pareto.hypervolume(front, reference: reference)
            var drawRng = SplitMix64(seed: context.seed, UInt64(context.trialNumber), stableHash("gp-draws"))
            // Common random numbers across candidates make their comparison less noisy.
            let draws = (0..<monteCarloSamples).map { _ in models.indices.map { _ in drawRng.nextGaussian() } }
            acquisition = { point in
                let predictions = models.map { $0.predict(point) }
                var total = 0.0
                for draw in draws {
                    let y = predictions.indices.map { predictions[$0].mean + predictions[$0].variance.squareRoot() * draw[$0] }
                    if front.contains(where: { f in zip(f, y).allSatisfy { $0 <= $1 } }) { continue }
                    total += Pareto.hypervolume(front + [y], reference: reference) - baseVolume
                }
                return Foundation.log(max(total / Double(draws.count), 1e-300))
            }
        }

        // Random candidates, then local search around the best few.
        var scored: [(assignment: [String: ParameterValue], score: Double)] = (0..<candidates).map { _ in
            let assignment = space.sampleUniform(using: &rng)
            return (assignment, acquisition(encoder.encode(assignment)))
        }
        scored.sort { $0.score > $1.score }
        var best = scored[0]
        for start in scored.prefix(5) {
            var current = start
            var scale = 0.1
            for _ in 0..<20 {
                let proposal = encoder.perturb(current.assignment, scale: scale, rng: &rng)
                let score = acquisition(encoder.encode(proposal))
                if score > current.score { current = (proposal, score) } else { scale = max(scale * 0.7, 0.005) }
            }
            if current.score > best.score { best = current }
        }
        return best.assignment
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

    /// Fits the hyperparameters with Adam on the negative log marginal likelihood.
    static func fit(x: [[Double]], y rawY: [Double], iterations: Int) -> GaussianProcess {
        let n = x.count, dims = x[0].count
        let mean = rawY.reduce(0, +) / Double(n)
        let sd = max((rawY.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)).squareRoot(), 1e-12)
        let y = rawY.map { ($0 - mean) / sd }
        // theta = [log l_1..l_D, log signal, log noise].
        let priorCentre = Foundation.log(0.5)
        var theta = [Double](repeating: priorCentre, count: dims) + [0, Foundation.log(1e-2)]
        var m = [Double](repeating: 0, count: theta.count), v = m
        let rate = 0.05, beta1 = 0.9, beta2 = 0.999
        var differences = [Double](repeating: 0, count: n * n * dims)
        for i in 0..<n { for j in 0..<n { for d in 0..<dims {
            let t = x[i][d] - x[j][d]
            differences[(i * n + j) * dims + d] = t * t
        } } }
        for step in 1...max(1, iterations) {
            guard let gradient = negativeLogLikelihoodGradient(theta: theta, y: y, n: n, dims: dims, squaredDifferences: differences) else { break }
            var g = gradient
            for d in 0..<dims { g[d] += (theta[d] - priorCentre) / (1.5 * 1.5) }
            for k in theta.indices {
                m[k] = beta1 * m[k] + (1 - beta1) * g[k]
                v[k] = beta2 * v[k] + (1 - beta2) * g[k] * g[k]
                let mHat = m[k] / (1 - pow(beta1, Double(step))), vHat = v[k] / (1 - pow(beta2, Double(step)))
                theta[k] -= rate * mHat / (vHat.squareRoot() + 1e-8)
            }
            for d in 0..<dims { theta[d] = min(max(theta[d], Foundation.log(1e-2)), Foundation.log(20)) }
            theta[dims] = min(max(theta[dims], Foundation.log(0.05)), Foundation.log(20))
            theta[dims + 1] = min(max(theta[dims + 1], Foundation.log(1e-6)), Foundation.log(0.5))
        }
        let lengthScales = theta.prefix(dims).map { Foundation.exp($0) }
        let signal = Foundation.exp(theta[dims]), noise = Foundation.exp(theta[dims + 1])
        var (l, _) = factorise(x: x, lengthScales: lengthScales, signal: signal, noise: noise)
        if l == nil { l = factorise(x: x, lengthScales: lengthScales, signal: signal, noise: noise + 1e-4).0 }
        let factor = l ?? identityFactor(n)
        let alpha = choleskySolve(factor, y, n: n)
        return GaussianProcess(x: x, standardisedY: y, lengthScales: lengthScales, signalVariance: signal, noiseVariance: noise, cholesky: factor, alpha: alpha)
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

    /// Gradient of the negative log marginal likelihood in theta; nil when K is not
    /// positive definite.
    private static func negativeLogLikelihoodGradient(theta: [Double], y: [Double], n: Int, dims: Int, squaredDifferences: [Double]) -> [Double]? {
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
        return gradient
    }

    /// Posterior mean and variance (of the latent function) at `point`.
    func predict(_ point: [Double]) -> (mean: Double, variance: Double) {
        let n = x.count
        var kStar = [Double](repeating: 0, count: n)
        var mean = 0.0
        for i in 0..<n {
            kStar[i] = Self.matern52(point, x[i], lengthScales: lengthScales, signal: signalVariance)
            mean += kStar[i] * alpha[i]
        }
        // v = L^-1 k*, variance = k** - v.v
        var squared = 0.0
        for i in 0..<n {
            var s = kStar[i]
            for j in 0..<i { s -= cholesky[i * n + j] * kStar[j] }
            kStar[i] = s / cholesky[i * n + i]
            squared += kStar[i] * kStar[i]
        }
        return (mean, max(signalVariance - squared, 1e-12))
    }
}

/// Lower Cholesky factor of a symmetric matrix (row-major), nil if not positive definite.
/// The O(n^3) loops below run over contiguous rows through unsafe buffers: the GP refits
/// its hyperparameters with one factorisation per optimiser step, so these dominate.
func choleskyFactor(_ a: [Double], n: Int) -> [Double]? {
    var l = [Double](repeating: 0, count: n * n)
    let ok = l.withUnsafeMutableBufferPointer { l -> Bool in
        a.withUnsafeBufferPointer { a -> Bool in
            for i in 0..<n {
                let rowI = i * n
                for j in 0...i {
                    let rowJ = j * n
                    var s = a[rowI + j]
                    for k in 0..<j { s -= l[rowI + k] * l[rowJ + k] }
                    if i == j {
                        guard s > 0 else { return false }
                        l[rowI + i] = s.squareRoot()
                    } else {
                        l[rowI + j] = s / l[rowJ + j]
                    }
                }
            }
            return true
        }
    }
    return ok ? l : nil
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
                        let rowK = k * n
                        for j in 0...k { acc[j] += a * inv[rowK + j] }
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
                        let rowI = i * n
                        for j in 0...i { out[rowI + j] += a * inv[rowK + j] }
                    }
                }
                for i in 0..<n { for j in 0..<i { out[j * n + i] = out[i * n + j] } }
            }
        }
    }
    return result
}
