// Acquisition functions of `GPSampler`: log expected improvement for one objective, expected
// hypervolume improvement for several.
import Foundation

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
