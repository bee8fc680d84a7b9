/// Robust summary of repeated latency samples.
///
/// Latency distributions on a shared machine have a hard floor and a long right tail
/// (preemption, cache misses, page faults), so the median and the interquartile range describe
/// them better than the mean and the standard deviation; the minimum is the best case the
/// hardware reaches.
public struct LatencyStatistics: Codable, Hashable, Sendable {
    public var count: Int
    public var median: Double
    /// First and third quartiles (linear interpolation between order statistics, like
    /// `numpy.percentile`'s default method).
    public var lowerQuartile: Double
    public var upperQuartile: Double
    /// Median absolute deviation from the median (unscaled).
    public var medianAbsoluteDeviation: Double
    public var minimum: Double
    public var maximum: Double
    public var mean: Double

    /// Upper minus lower quartile.
    public var interquartileRange: Double { upperQuartile - lowerQuartile }

    /// The interquartile range relative to the median (0 when the median is 0).
    public var relativeSpread: Double { median > 0 ? interquartileRange / median : 0 }

    /// Summarises `samples`; nil when there are none.
    public init?(_ samples: [Double]) {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        count = sorted.count
        median = Self.percentile(sorted: sorted, 50)
        lowerQuartile = Self.percentile(sorted: sorted, 25)
        upperQuartile = Self.percentile(sorted: sorted, 75)
        let median = median
        medianAbsoluteDeviation = Self.percentile(sorted: sorted.map { abs($0 - median) }.sorted(), 50)
        minimum = sorted[0]
        maximum = sorted[sorted.count - 1]
        mean = sorted.reduce(0, +) / Double(sorted.count)
    }

    /// The `percent`th percentile of ascending, non-empty `sorted` with linear interpolation
    /// between the closest ranks: rank = percent/100 * (n - 1).
    public static func percentile(sorted: [Double], _ percent: Double) -> Double {
        precondition(!sorted.isEmpty, "percentile of no samples")
        let rank = min(max(percent, 0), 100) / 100 * Double(sorted.count - 1)
        let below = Int(rank.rounded(.down))
        let above = min(below + 1, sorted.count - 1)
        let fraction = rank - Double(below)
        return sorted[below] + (sorted[above] - sorted[below]) * fraction
    }

    /// The median of unsorted `samples` (nil when empty).
    public static func median(_ samples: [Double]) -> Double? {
        samples.isEmpty ? nil : percentile(sorted: samples.sorted(), 50)
    }
}
