import Foundation
import Randomness

/// Standard normal helpers used by the Parzen estimators and the GP acquisition.
enum Gaussian {
    static let logSqrt2Pi = 0.5 * Foundation.log(2 * Double.pi)

    static func cdf(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }

    static func logPDF(_ z: Double) -> Double { -0.5 * z * z - logSqrt2Pi }

    /// log(Phi(b) - Phi(a)) for a < b, computed in whichever tail keeps precision.
    static func logMass(_ a: Double, _ b: Double) -> Double {
        // Both bounds beyond 9 sigma: the mass is 1 to within 1e-18, skip the erfc calls.
        if a <= -9 && b >= 9 { return 0 }
        let mass = a > 0 ? cdf(-a) - cdf(-b) : cdf(b) - cdf(a)
        return Foundation.log(max(mass, 1e-300))
    }

    /// Inverse of the standard normal CDF (Acklam's rational approximation refined by one
    /// Halley step, relative error below 1e-12).
    static func quantile(_ p: Double) -> Double {
        let p = min(max(p, 1e-300), 1 - 1e-16)
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        var x: Double
        if p < low {
            let q = (-2 * Foundation.log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - low {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * Foundation.log(1 - p)).squareRoot()
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let e = cdf(x) - p
        let u = e * (2 * Double.pi).squareRoot() * Foundation.exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }

    /// A draw from N(mu, sigma^2) truncated to [low, high], by inverting the CDF.
    static func sampleTruncated<G: RandomNumberGenerator>(mu: Double, sigma: Double, low: Double, high: Double, using rng: inout G) -> Double {
        let a = (low - mu) / sigma, b = (high - mu) / sigma
        // Work in the lower tail for precision: mirror when the interval sits above the mean.
        if a > 0 {
            let z = -drawBetween(-b, -a, &rng)
            return min(max(mu + sigma * z, low), high)
        }
        let z = drawBetween(a, b, &rng)
        return min(max(mu + sigma * z, low), high)
    }

    private static func drawBetween<G: RandomNumberGenerator>(_ a: Double, _ b: Double, _ rng: inout G) -> Double {
        let pa = cdf(a), pb = cdf(b)
        return quantile(pa + rng.nextUnit() * (pb - pa))
    }
}

/// log(sum(exp(values))) without overflow.
func logSumExp(_ values: [Double]) -> Double {
    values.withUnsafeBufferPointer(logSumExp)
}

/// log(sum(exp(values))) over a buffer (TPE evaluates it over a reused scratch buffer).
func logSumExp(_ values: UnsafeBufferPointer<Double>) -> Double {
    guard !values.isEmpty else { return -.infinity }
    let top = largest(values)
    guard top > -.infinity else { return -.infinity }
    var sum = 0.0
    // Terms 40 nats below the top add under 1e-17 relative; skipping them also avoids
    // libm's slow underflow path.
    for v in values where v - top > -40 { sum += Foundation.exp(v - top) }
    return top + Foundation.log(sum)
}

/// The largest of a non-empty buffer: the value of `values.max()` (NaN only if the first
/// value is NaN; the sign of a zero maximum may differ), in two SIMD accumulators, because
/// a scalar running maximum is one long dependency chain (most of TPE's logSumExp time).
private func largest(_ values: UnsafeBufferPointer<Double>) -> Double {
    let n = values.count
    var top = values[0]
    var i = 0
    if n >= 8 {
        // Lanes start at the first value, so a NaN first value propagates and a later NaN
        // never wins a comparison, as in the scalar maximum.
        var a = SIMD4<Double>(repeating: top), b = a
        let raw = UnsafeRawPointer(values.baseAddress!)
        while i + 8 <= n {
            let x = raw.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
            let y = raw.loadUnaligned(fromByteOffset: (i + 4) * 8, as: SIMD4<Double>.self)
            a.replace(with: x, where: a .< x)
            b.replace(with: y, where: b .< y)
            i += 8
        }
        for lane in 0..<4 {
            if top < a[lane] { top = a[lane] }
            if top < b[lane] { top = b[lane] }
        }
    }
    while i < n {
        if top < values[i] { top = values[i] }
        i += 1
    }
    return top
}
