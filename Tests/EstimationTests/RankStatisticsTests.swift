@testable import Estimation
import Foundation
import Randomness
import Testing

@Suite("Rank statistics against scipy")
struct RankStatisticsTests {
    @Test("Kendall tau-b, Spearman rho and Pearson match scipy on every fixture case")
    func matchesScipy() throws {
        let fixture = try loadFixture("rank_statistics")
        let cases = try #require(fixture["cases"] as? [[String: Any]])
        #expect(cases.count >= 8)
        for c in cases {
            let name = c["name"] as? String ?? "?"
            let x = doubles(c["x"]), y = doubles(c["y"])
            let checks: [(String, Double)] = [
                ("kendall_tau_b", try RankStatistics.kendallTau(x, y)),
                ("spearman_rho", try RankStatistics.spearmanRho(x, y)),
                ("pearson", try RankStatistics.pearson(x, y)),
            ]
            for (key, value) in checks {
                if let expected = number(c[key]) {
                    #expect(abs(value - expected) < 1e-12, "\(name) \(key): \(value) vs scipy \(expected)")
                } else {
                    #expect(value.isNaN, "\(name) \(key): scipy gives nan, we gave \(value)")
                }
            }
        }
    }

    @Test("Kendall tau of a large permutation agrees with the O(n^2) pair count")
    func kendallAgreesWithBruteForce() throws {
        var rng = SplitMix64(seed: 3)
        let x = (0..<300).map { _ in Double(rng.nextIndex(below: 40)) }
        let y = (0..<300).map { _ in Double(rng.nextIndex(below: 25)) }
        var concordant = 0, discordant = 0, tiedX = 0, tiedY = 0
        for i in 0..<300 {
            for j in (i + 1)..<300 {
                let s = (x[i] - x[j]) * (y[i] - y[j])
                if s > 0 { concordant += 1 } else if s < 0 { discordant += 1 }
                if x[i] == x[j] { tiedX += 1 }
                if y[i] == y[j] { tiedY += 1 }
            }
        }
        let total = 300 * 299 / 2
        let expected = Double(concordant - discordant) / (Double(total - tiedX) * Double(total - tiedY)).squareRoot()
        #expect(abs(try RankStatistics.kendallTau(x, y) - expected) < 1e-12)
    }

    @Test("Average ranks give ties the mean of the ranks they span")
    func averageRanks() {
        #expect(RankStatistics.averageRanks([10, 20, 10, 30, 20, 20]) == [1.5, 4, 1.5, 6, 4, 4])
    }

    @Test("Malformed input is rejected with a typed error")
    func rejectsMalformedInput() {
        #expect(throws: RankStatisticsError.lengthMismatch(first: 3, second: 2)) { try RankStatistics.kendallTau([1, 2, 3], [1, 2]) }
        #expect(throws: RankStatisticsError.nonFiniteValue(sample: "y", index: 1)) { try RankStatistics.spearmanRho([1, 2], [1, .nan]) }
        #expect(throws: RankStatisticsError.tooFewPairs(count: 1, required: 2)) { try RankStatistics.pearson([1], [1]) }
    }

    @Test("dropMissing removes non-finite values and sentinels")
    func dropMissing() {
        let kept = RankStatistics.dropMissing([1, -1e8, 3, -.infinity, 5], [1, 2, 3, 4, .nan], sentinels: [-1e8])
        #expect(kept.x == [1, 3])
        #expect(kept.y == [1, 3])
    }

    @Test("Bootstrap interval is seeded, brackets the estimate and narrows with more data")
    func bootstrap() throws {
        var rng = SplitMix64(seed: 11)
        let x = (0..<400).map { _ in rng.nextGaussian() }
        let y = x.map { 0.7 * $0 + 0.7 * rng.nextGaussian() }
        let a = try RankStatistics.bootstrap(.kendallTau, x, y, resamples: 300, seed: 5)
        let b = try RankStatistics.bootstrap(.kendallTau, x, y, resamples: 300, seed: 5)
        #expect(a == b)
        #expect(a.lower < a.estimate && a.estimate < a.upper)
        #expect(a.validResamples == 300)
        let small = try RankStatistics.bootstrap(.kendallTau, Array(x.prefix(40)), Array(y.prefix(40)), resamples: 300, seed: 5)
        #expect(small.upper - small.lower > a.upper - a.lower)
        // With n = 400 the tau-b sampling s.d. is about 0.03, so a 95% interval is roughly 0.08-0.14 wide.
        #expect(a.upper - a.lower > 0.05 && a.upper - a.lower < 0.2)
    }

    @Test("numpy-style linear quantile")
    func quantile() {
        #expect(RankStatistics.quantile(sorted: [1, 2, 3, 4], 0.5) == 2.5)
        #expect(RankStatistics.quantile(sorted: [1, 2, 3, 4], 0.025) == 1.075)
    }
}
