// Rank correlation between predicted and true performance: the yardstick for every estimator.
//
// Kendall tau-b and Spearman rho follow scipy.stats.kendalltau (default variant "b") and
// scipy.stats.spearmanr exactly, including how ties are treated, so figures here can be compared
// with published NAS predictor studies, which almost all report the scipy values.
import Foundation
import Randomness

/// Errors raised by the rank statistics on malformed input.
public enum RankStatisticsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The two samples must pair up one to one.
    case lengthMismatch(first: Int, second: Int)
    /// A statistic needs at least `required` pairs.
    case tooFewPairs(count: Int, required: Int)
    /// NaN or infinite value at `index` of the named sample; drop missing values first.
    case nonFiniteValue(sample: String, index: Int)
    /// Bootstrap settings out of range.
    case invalidBootstrap(field: String, value: Double, expected: String)

    public var description: String {
        switch self {
        case .lengthMismatch(let a, let b): "samples differ in length: \(a) vs \(b); expected equal lengths"
        case .tooFewPairs(let n, let r): "\(n) pairs given; expected at least \(r)"
        case .nonFiniteValue(let s, let i): "sample \(s) has a non-finite value at index \(i); expected finite numbers"
        case .invalidBootstrap(let f, let v, let e): "bootstrap \(f) = \(v); expected \(e)"
        }
    }
}

/// Rank correlation and linear correlation statistics.
///
/// A statistic is `nan` when it is undefined (one sample constant), as in scipy.
public enum RankStatistics {
    static func validate(_ x: [Double], _ y: [Double]) throws {
        guard x.count == y.count else { throw RankStatisticsError.lengthMismatch(first: x.count, second: y.count) }
        guard x.count >= 2 else { throw RankStatisticsError.tooFewPairs(count: x.count, required: 2) }
        if let i = x.firstIndex(where: { !$0.isFinite }) { throw RankStatisticsError.nonFiniteValue(sample: "x", index: i) }
        if let i = y.firstIndex(where: { !$0.isFinite }) { throw RankStatisticsError.nonFiniteValue(sample: "y", index: i) }
    }

    /// Kendall's tau-b in O(n log n) (Knight 1966), the variant scipy.stats.kendalltau computes by default:
    /// tau_b = (concordant - discordant) / sqrt((n0 - n1)(n0 - n2)), where n0 = n(n-1)/2 and n1, n2 count
    /// the pairs tied in x and in y.
    public static func kendallTau(_ x: [Double], _ y: [Double]) throws -> Double {
        try validate(x, y)
        let n = x.count
        // Sort by x, then y, so that tied-x runs are ordered by y and contribute no swaps.
        var order = Array(0..<n)
        order.sort { x[$0] != x[$1] ? x[$0] < x[$1] : y[$0] < y[$1] }
        var xTies = 0, jointTies = 0
        var runStart = 0
        for i in 1...n {
            if i == n || x[order[i]] != x[order[runStart]] {
                let t = i - runStart
                xTies += t * (t - 1) / 2
                // Within a tied-x run, count the pairs also tied in y.
                var yRun = runStart
                for j in (runStart + 1)...i {
                    if j == i || y[order[j]] != y[order[yRun]] {
                        let u = j - yRun
                        jointTies += u * (u - 1) / 2
                        yRun = j
                    }
                }
                runStart = i
            }
        }
        // Discordant pairs = inversions of y in this order (pairs tied in y are not inversions).
        var ys = order.map { y[$0] }
        var buffer = ys
        let discordant = countInversions(&ys, &buffer, 0, n)
        var yTies = 0
        runStart = 0
        for i in 1...n where i == n || ys[i] != ys[runStart] {
            let t = i - runStart
            yTies += t * (t - 1) / 2
            runStart = i
        }
        let total = n * (n - 1) / 2
        if xTies == total || yTies == total { return .nan }
        let concordantMinusDiscordant = Double(total - xTies - yTies + jointTies - 2 * discordant)
        // Same operation order as scipy, so results agree to the last bit where possible.
        let tau = concordantMinusDiscordant / Double(total - xTies).squareRoot() / Double(total - yTies).squareRoot()
        return min(1, max(-1, tau))
    }

    /// Stable merge sort of values[lo..<hi] returning the number of strict inversions.
    private static func countInversions(_ values: inout [Double], _ buffer: inout [Double], _ lo: Int, _ hi: Int) -> Int {
        if hi - lo < 2 { return 0 }
        let mid = (lo + hi) / 2
        var swaps = countInversions(&values, &buffer, lo, mid) + countInversions(&values, &buffer, mid, hi)
        var i = lo, j = mid, k = lo
        while i < mid && j < hi {
            if values[j] < values[i] {
                swaps += mid - i
                buffer[k] = values[j]; j += 1
            } else {
                buffer[k] = values[i]; i += 1
            }
            k += 1
        }
        while i < mid { buffer[k] = values[i]; i += 1; k += 1 }
        while j < hi { buffer[k] = values[j]; j += 1; k += 1 }
        for t in lo..<hi { values[t] = buffer[t] }
        return swaps
    }

    /// Ranks 1...n with tied values given the average of the ranks they span
    /// (scipy.stats.rankdata(method="average")).
    public static func averageRanks(_ values: [Double]) -> [Double] {
        let n = values.count
        let order = (0..<n).sorted { values[$0] < values[$1] }
        var ranks = [Double](repeating: 0, count: n)
        var start = 0
        while start < n {
            var end = start + 1
            while end < n && values[order[end]] == values[order[start]] { end += 1 }
            let rank = Double(start + end + 1) / 2   // mean of (start+1)...end
            for k in start..<end { ranks[order[k]] = rank }
            start = end
        }
        return ranks
    }

    /// Spearman's rho: Pearson correlation of the average ranks (scipy.stats.spearmanr).
    public static func spearmanRho(_ x: [Double], _ y: [Double]) throws -> Double {
        try validate(x, y)
        return pearsonUnchecked(averageRanks(x), averageRanks(y))
    }

    /// Pearson's product-moment correlation.
    public static func pearson(_ x: [Double], _ y: [Double]) throws -> Double {
        try validate(x, y)
        return pearsonUnchecked(x, y)
    }

    static func pearsonUnchecked(_ x: [Double], _ y: [Double]) -> Double {
        let n = Double(x.count)
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for i in x.indices {
            let dx = x[i] - mx, dy = y[i] - my
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy
        }
        if sxx == 0 || syy == 0 { return .nan }
        return max(-1, min(1, sxy / (sxx.squareRoot() * syy.squareRoot())))
    }

    /// Removes the pairs in which either value is not finite (NaN, +-inf) or equals one of the
    /// `sentinels` (e.g. NASLib's -1e8 failure score). Returns the kept pairs.
    public static func dropMissing(_ x: [Double], _ y: [Double], sentinels: Set<Double> = []) -> (x: [Double], y: [Double]) {
        var keptX: [Double] = [], keptY: [Double] = []
        for i in 0..<min(x.count, y.count) {
            let a = x[i], b = y[i]
            if a.isFinite && b.isFinite && !sentinels.contains(a) && !sentinels.contains(b) {
                keptX.append(a); keptY.append(b)
            }
        }
        return (keptX, keptY)
    }
}

/// Which paired statistic a bootstrap resamples.
public enum CorrelationStatistic: String, Codable, Sendable, Hashable, CaseIterable {
    case kendallTau = "kendall_tau"
    case spearmanRho = "spearman_rho"
    case pearson

    public func evaluate(_ x: [Double], _ y: [Double]) throws -> Double {
        switch self {
        case .kendallTau: try RankStatistics.kendallTau(x, y)
        case .spearmanRho: try RankStatistics.spearmanRho(x, y)
        case .pearson: try RankStatistics.pearson(x, y)
        }
    }
}

/// A point estimate with a percentile bootstrap confidence interval.
public struct BootstrapInterval: Codable, Sendable, Hashable {
    public var estimate: Double
    public var lower: Double
    public var upper: Double
    public var confidenceLevel: Double
    /// Resamples that gave a defined statistic (a resample whose x or y is constant gives NaN and is skipped).
    public var validResamples: Int
}

extension RankStatistics {
    /// Percentile bootstrap: resample the pairs with replacement `resamples` times (seeded), evaluate
    /// the statistic on each, and report the (1-level)/2 and (1+level)/2 quantiles with numpy's default
    /// linear interpolation between order statistics.
    public static func bootstrap(
        _ statistic: CorrelationStatistic, _ x: [Double], _ y: [Double],
        resamples: Int = 1000, confidenceLevel: Double = 0.95, seed: UInt64 = 0
    ) throws -> BootstrapInterval {
        try validate(x, y)
        guard resamples >= 2 else {
            throw RankStatisticsError.invalidBootstrap(field: "resamples", value: Double(resamples), expected: ">= 2")
        }
        guard confidenceLevel > 0 && confidenceLevel < 1 else {
            throw RankStatisticsError.invalidBootstrap(field: "confidenceLevel", value: confidenceLevel, expected: "in (0, 1)")
        }
        let estimate = try statistic.evaluate(x, y)
        var rng = SplitMix64(seed: seed)
        let n = x.count
        var values: [Double] = []
        values.reserveCapacity(resamples)
        var xs = [Double](repeating: 0, count: n), ys = xs
        for _ in 0..<resamples {
            for k in 0..<n {
                let i = rng.nextIndex(below: n)
                xs[k] = x[i]; ys[k] = y[i]
            }
            let v = try statistic.evaluate(xs, ys)
            if v.isFinite { values.append(v) }
        }
        values.sort()
        let alpha = (1 - confidenceLevel) / 2
        return BootstrapInterval(
            estimate: estimate,
            lower: quantile(sorted: values, alpha),
            upper: quantile(sorted: values, 1 - alpha),
            confidenceLevel: confidenceLevel,
            validResamples: values.count)
    }

    /// numpy.percentile(method="linear") on sorted data; NaN when empty.
    public static func quantile(sorted values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let position = q * Double(values.count - 1)
        let low = Int(position.rounded(.down))
        let high = min(low + 1, values.count - 1)
        let fraction = position - Double(low)
        return values[low] + (values[high] - values[low]) * fraction
    }
}
