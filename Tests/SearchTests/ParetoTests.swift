import Foundation
import Randomness
@testable import Search
import Testing

@Suite struct ParetoTests {
    @Test func hypervolume2DHandComputed() {
        // Staircase (1,3), (2,2), (3,1) with reference (4,4):
        // columns [1,2]x[3,4] + [2,3]x[2,4] + [3,4]x[1,4] = 1 + 2 + 3 = 6.
        let points: [[Double]] = [[1, 3], [2, 2], [3, 1]]
        #expect(Pareto.hypervolume(points, reference: [4, 4]) == 6)
        // A dominated point and one outside the reference change nothing.
        #expect(Pareto.hypervolume(points + [[3, 3], [5, 0]], reference: [4, 4]) == 6)
        #expect(Pareto.hypervolume([], reference: [1, 1]) == 0)
    }

    @Test func hypervolume3DHandComputed() {
        // One point: a box. Two boxes (0,0,1) and (1,1,0) with reference (2,2,2):
        // 2*2*1 + 1*1*2 - overlap (1*1*1) = 4 + 2 - 1 = 5.
        #expect(Pareto.hypervolume([[1, 1, 1]], reference: [2, 2, 2]) == 1)
        #expect(Pareto.hypervolume([[0, 0, 1], [1, 1, 0]], reference: [2, 2, 2]) == 5)
        // 4-D: unit corner boxes (0,1,1,1) and (1,0,1,1) in reference 2^4: 2 + 2 - 1 = 3.
        #expect(Pareto.hypervolume([[0, 1, 1, 1], [1, 0, 1, 1]], reference: [2, 2, 2, 2]) == 3)
    }

    /// Monte Carlo estimate of the dominated volume, to check the exact algorithms on
    /// random sets in 3 and 4 dimensions.
    @Test(arguments: [3, 4]) func hypervolumeMatchesMonteCarlo(dimensions: Int) {
        var rng = SplitMix64(seed: UInt64(dimensions))
        let points = (0..<12).map { _ in (0..<dimensions).map { _ in rng.nextUnit() } }
        let reference = [Double](repeating: 1, count: dimensions)
        let exact = Pareto.hypervolume(points, reference: reference)
        let samples = 200_000
        var inside = 0
        for _ in 0..<samples {
            let x = (0..<dimensions).map { _ in rng.nextUnit() }
            if points.contains(where: { p in zip(p, x).allSatisfy { $0 <= $1 } }) { inside += 1 }
        }
        let estimate = Double(inside) / Double(samples)
        #expect(abs(exact - estimate) < 0.01, "exact \(exact), Monte Carlo \(estimate)")
    }

    @Test func nonDominatedSortingMatchesBruteForce() {
        var rng = SplitMix64(seed: 7)
        for trial in 0..<30 {
            let m = 2 + trial % 3
            // Coarse values so that ties and duplicates occur.
            let points = (0..<40).map { _ in (0..<m).map { _ in Double(Int(rng.next() % 6)) } }
            let ranks = Pareto.nonDominatedRanks(points)
            // Brute force: peel fronts.
            var remaining = Set(points.indices)
            var expected = [Int](repeating: -1, count: points.count)
            var rank = 0
            while !remaining.isEmpty {
                let front = remaining.filter { i in !remaining.contains { j in Pareto.dominates(points[j], points[i]) } }
                for i in front { expected[i] = rank }
                remaining.subtract(front)
                rank += 1
            }
            #expect(ranks == expected)
            #expect(Set(Pareto.nonDominatedIndices(points)) == Set(points.indices.filter { expected[$0] == 0 }))
        }
    }

    @Test func crowdingDistanceAndIGD() {
        let front: [[Double]] = [[0, 4], [1, 2], [3, 1], [4, 0]]
        let distance = Pareto.crowdingDistances(front)
        #expect(distance[0] == .infinity && distance[3] == .infinity)
        // Point 1: (3 - 0)/4 + (4 - 1)/4 = 1.5; point 2: (4 - 1)/4 + (2 - 0)/4 = 1.25.
        #expect(abs(distance[1] - 1.5) < 1e-12 && abs(distance[2] - 1.25) < 1e-12)
        #expect(Pareto.igd(front, referenceFront: front) == 0)
        // Reference (0,0): nearest approximating point (1,0) at distance 1; (2,2): (2,1) at 1.
        #expect(Pareto.igd([[1, 0], [2, 1]], referenceFront: [[0, 0], [2, 2]]) == 1)
    }
}
