// Gaussian-process regression for `GPSampler`: the model, its marginal-likelihood fit and the
// memo of fitted hyperparameters.
import Foundation
import LinearAlgebra
import Randomness

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
